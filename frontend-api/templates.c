/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include <errno.h>

#include "templates.h"

int api_templates_fetch(const ApiRedisConfig *cfg, const ApiTemplatesQuery *q,
                        uint64_t timeout_ms, json_t **ret, char **reterr) {
        return -ENOSYS;
}
