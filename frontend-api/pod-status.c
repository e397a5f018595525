/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include <errno.h>

#include "pod-status.h"

int api_pod_status_fetch(const ApiPod *pods, size_t n_pods, const char *token,
                         uint64_t timeout_ms, json_t **ret) {
        return -ENOSYS;
}
