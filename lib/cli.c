/*
 * cli.c - shared command-line options (see cli.h).
 */
#include "cli.h"

#include <stdlib.h>

#include "ct.h"

void cli_common_init(struct cli_common *c) {
    c->output = "-";
    rec_wopts_default(&c->wopts);
    c->threads = 1;
}

int cli_common(int ch, const char *arg, struct cli_common *c, void (*usage)(FILE *)) {
    long n;
    switch (ch) {
    case 'o': c->output = arg; return 1;
    case 'z':
        if (rec_wopts_parse(arg, &c->wopts) != 0) ct_usage_die("--compress: %s", ct_lasterr());
        return 1;
    case 'j':
        if (ct_parse_long(arg, &n) != 0 || n < 1 || n > CT_MAX_THREADS)
            ct_usage_die("--threads: expected a count from 1 to %d, got '%s'", CT_MAX_THREADS, arg);
        c->threads = (int)n;
        c->wopts.threads = (int)n;
        return 1;
    case 'v': ct_log_level++; return 1;
    case 'h':
        usage(stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) exit(CT_EXIT_FAIL);
        exit(CT_EXIT_OK);
    case 'V':
        printf("%s (ctvis) %s\n", ct_progname(), CT_VERSION);
        exit(fflush(stdout) == 0 ? CT_EXIT_OK : CT_EXIT_FAIL);
    default: return 0;
    }
}

void cli_unknown(void) {
    fprintf(stderr, "Try '%s --help'.\n", ct_progname());
    exit(CT_EXIT_USAGE);
}

/* ---- selection ---- */

#include <string.h>

int cli_select_records(struct cli_select *s, const char *list) {
    char buf[1024];
    if (strlen(list) >= sizeof buf) return ct_seterr("record list too long");
    strcpy(buf, list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (s->n_ranges >= CLI_SEL_MAX) return ct_seterr("more than %d record ranges", CLI_SEL_MAX);
        long lo, hi;
        char *dash = strchr(tok, '-');
        if (dash) {
            *dash = 0;
            if (ct_parse_long(tok, &lo) != 0 || lo < 0) return ct_seterr("invalid record index '%s'", tok);
            if (dash[1] == 0) hi = -1;                       /* open end */
            else if (ct_parse_long(dash + 1, &hi) != 0 || hi < lo)
                return ct_seterr("invalid record range '%s-%s'", tok, dash + 1);
        } else {
            if (ct_parse_long(tok, &lo) != 0 || lo < 0) return ct_seterr("invalid record index '%s'", tok);
            hi = lo;
        }
        s->lo[s->n_ranges] = lo;
        s->hi[s->n_ranges] = hi;
        s->n_ranges++;
    }
    return 0;
}

void cli_select_id(struct cli_select *s, const char *id) {
    if (s->n_ids >= CLI_SEL_MAX) ct_usage_die("more than %d --id options", CLI_SEL_MAX);
    s->ids[s->n_ids++] = id;
}

void cli_select_tensor(struct cli_select *s, const char *name) {
    if (s->n_tensors >= CLI_SEL_MAX) ct_usage_die("more than %d --tensor options", CLI_SEL_MAX);
    s->tensors[s->n_tensors++] = name;
}

int cli_select_option(int ch, const char *arg, struct cli_select *s) {
    switch (ch) {
    case 'r':
        if (cli_select_records(s, arg) != 0) ct_usage_die("--record: %s", ct_lasterr());
        return 1;
    case 'i': cli_select_id(s, arg); return 1;
    case 't': cli_select_tensor(s, arg); return 1;
    default: return 0;
    }
}

int cli_select_match(const struct cli_select *s, const struct rec *r) {
    if (s->n_ranges) {
        int in = 0;
        for (int i = 0; i < s->n_ranges && !in; i++)
            in = r->index >= s->lo[i] && (s->hi[i] < 0 || r->index <= s->hi[i]);
        if (!in) return 0;
    }
    if (s->n_ids) {
        int in = 0;
        for (int i = 0; i < s->n_ids && !in; i++) in = !strcmp(s->ids[i], r->id);
        if (!in) return 0;
    }
    return 1;
}

int cli_select_tensor_match(const struct cli_select *s, const char *name) {
    if (!s->n_tensors) return 1;
    for (int i = 0; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i], name)) return 1;
    return 0;
}
