/* test-organs.c - lib/organs: the one CT-RATE organ list behind every default
 * (class merges, report organs), organ-name validity, and the unknown-key
 * checks of the three organ/abnormality YAML files.  Includes organs.h only:
 * the items are reachable without the report parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "check.h"
#include "ct.h"
#include "organs.h"

static int load_err(struct tn_arena *a, const char *yaml, int kind, const char *want) {
    char p[] = "/tmp/ctvis-test-organs-XXXXXX";
    int fd = mkstemp(p);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) return 0;
    fputs(yaml, f);
    fclose(f);
    struct org_set s;
    struct org_abn t;
    struct org_classes c;
    int rc = kind == 0 ? org_set_load(p, a, &s) : kind == 1 ? org_abn_load(p, a, &t) : org_classes_load(p, a, &c);
    remove(p);
    if (rc == 0) return 0;
    if (!strstr(ct_lasterr(), want)) printf("# %s\n", ct_lasterr());
    return strstr(ct_lasterr(), want) != NULL;
}

int main(void) {
    struct tn_arena *a = tn_arena_new(0);

    /* one organ list: the class-merge default and the report default are org_ct_rate */
    struct org_classes c;
    struct org_set s;
    org_set_default(&s);
    int same = org_classes_load(NULL, a, &c) == 0 && c.n == ORG_CT_RATE_N && s.n == ORG_CT_RATE_N;
    for (int k = 0; same && k < ORG_CT_RATE_N; k++)
        same = !strcmp(c.organs[k].name, org_ct_rate[k]) && !strcmp(s.names[k], org_ct_rate[k]);
    CHECK(same && !strcmp(org_ct_rate[0], "lung") && !strcmp(org_ct_rate[3], "aorta"),
          "organs: built-in class merges and report organs are lung, heart, esophagus, aorta");

    /* every item of the default table is scored on one of those organs */
    struct org_abn t;
    org_abn_default(&t);
    CHECK(t.n_items == 16 && org_abn_check_organs(&t, &s) == 0 && !strcmp(t.items[15].organ, "aorta") &&
              !strcmp(t.items[15].positive, "Arterial wall calcification."),
          "organs: 16 items on the CT-RATE organs, the last one the aorta's");

    char longname[ORG_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[ORG_NAME_MAX + 1] = 0;
    CHECK(org_name_valid("lung", 4) && !org_name_valid("", 0) && !org_name_valid("a/b", 3) &&
              org_name_valid(longname, ORG_NAME_MAX) && !org_name_valid(longname, ORG_NAME_MAX + 1),
          "organs: a name is 1-100 bytes without '/'");

    /* unknown keys: one check, the messages of before */
    CHECK(load_err(a, "organs: [lung]\nalias: {}\n", 0, "unknown key 'alias' (expected organs, aliases, ignore)"),
          "organs: unknown key in an organ set");
    CHECK(load_err(a, "abnormalities: [A]\nitems: []\nextra: 1\n", 1,
                   "unknown key 'extra' (expected abnormalities, items)"),
          "organs: unknown key in an abnormality table");
    CHECK(load_err(a, "abnormalities: [A]\nitems:\n  - {organ: lung, abnormality: A, negative: n, positive: p, x: 1}\n",
                   1, ":3:64:"), "organs: unknown item key, with its position");
    CHECK(load_err(a, "abnormalities: [A]\nitems:\n  - {organ: lung, abnormality: A, negative: n, positive: p, x: 1}\n",
                   1, "unknown item key 'x'"), "organs: unknown item key named");
    CHECK(load_err(a, "name: x\nid: 3\norgans: []\n", 2, "unknown key 'id'"), "organs: unknown key in class merges");
    tn_arena_free(a);
    return check_failures != 0;
}
