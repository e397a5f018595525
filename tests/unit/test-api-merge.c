/* SPDX-License-Identifier: MIT */
/* placeholder: being written; skipped until then */
int main(void);
int main(void) { return 77; }
