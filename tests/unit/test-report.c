/* test-report.c - lib/csv (RFC 4180, UTF-8) and lib/report (rule, normalisation,
 * payloads, ids, config files).  Expected values are worked out by hand from
 * RFC 4180, the Unicode tables and method.md §6.1. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "csv.h"
#include "ct.h"
#include "idset.h"
#include "report.h"

/* ---- csv ---- */

/* Read all rows of text; returns rows read or -1; joins fields as "a|b;c|d;" in out. */
static int csv_all(const char *text, char *out, size_t n) {
    struct csv_reader *r = csv_reader_mem(text, strlen(text), "t.csv");
    struct csv_row row;
    int rc, rows = 0;
    out[0] = 0;
    while ((rc = csv_read(r, &row)) > 0) {
        for (int i = 0; i < row.n; i++) {
            strncat(out, row.fields[i], n - strlen(out) - 1);
            strncat(out, i + 1 < row.n ? "|" : ";", n - strlen(out) - 1);
        }
        rows++;
    }
    csv_reader_close(r);
    return rc < 0 ? -1 : rows;
}

static int csv_err(const char *text, const char *want) {
    char out[512];
    return csv_all(text, out, sizeof out) == -1 && strstr(ct_lasterr(), want) != NULL;
}

static void test_csv(void) {
    char out[512];
    CHECK(csv_all("a,b\n1,2\n", out, sizeof out) == 2 && !strcmp(out, "a|b;1|2;"), "csv: plain");
    CHECK(csv_all("a,b\r\n1,2", out, sizeof out) == 2 && !strcmp(out, "a|b;1|2;"), "csv: CRLF, no final newline");
    CHECK(csv_all("a,\"x, \"\"y\"\"\nz\",c\n", out, sizeof out) == 1 && !strcmp(out, "a|x, \"y\"\nz|c;"),
          "csv: quoted comma, doubled quotes, newline inside quotes");
    CHECK(csv_all("\xef\xbb\xbf" "a\n\n\nb\n\r\n", out, sizeof out) == 2 && !strcmp(out, "a;b;"),
          "csv: BOM and blank lines skipped");
    CHECK(csv_all(",,\n\"\",x\n", out, sizeof out) == 2 && !strcmp(out, "||;|x;"), "csv: empty fields");
    CHECK(csv_all("\"a\r\nb\"\n", out, sizeof out) == 1 && !strcmp(out, "a\r\nb;"), "csv: CRLF kept inside quotes");
    CHECK(csv_all("x,\"\xc3\xa9\xe2\x80\x94\"\n", out, sizeof out) == 1 && !strcmp(out, "x|\xc3\xa9\xe2\x80\x94;"),
          "csv: UTF-8 in quoted field");

    struct csv_reader *r = csv_reader_mem("h\n\"a\nb\nc\",d\nz\n", 14, "t.csv");
    struct csv_row row;
    csv_read(r, &row);
    CHECK(csv_read(r, &row) == 1 && row.line == 2 && row.end_line == 4, "csv: row start and end lines");
    CHECK(csv_read(r, &row) == 1 && row.line == 5, "csv: line numbers continue after a multi-line field");
    csv_reader_close(r);

    CHECK(csv_err("a,b\n1,\"2\n3\n", "t.csv:2:3: unterminated quoted field"), "csv: unterminated quote names its line");
    CHECK(csv_err("a,b\"c\n", "t.csv:1:4: quote inside an unquoted field"), "csv: stray quote");
    CHECK(csv_err("\"a\"b\n", "t.csv:1:4: unexpected text after a closing quote"), "csv: text after closing quote");
    CHECK(csv_err("a\rb\n", "t.csv:1:2: carriage return"), "csv: bare CR");
    CHECK(csv_err("ok\nab\xff\n", "t.csv:2:3: invalid UTF-8"), "csv: invalid byte with position");
    CHECK(csv_err("\"\xc3\"\"\"\n", "invalid UTF-8"), "csv: sequence cut by a doubled quote");
    CHECK(csv_err("x\xe2\x82\n", "invalid UTF-8"), "csv: truncated sequence at end of field");
    struct csv_reader *rn = csv_reader_mem("a\0b\n", 4, "n.csv");
    struct csv_row rown;
    CHECK(csv_read(rn, &rown) == -1 && strstr(ct_lasterr(), "n.csv:1:2: NUL byte"), "csv: NUL byte refused");
    csv_reader_close(rn);

    /* writer: minimal quoting, read back identical */
    struct csv_buf b = { 0 };
    const char *f[4] = { "plain", "a,b", "say \"hi\"", "two\nlines" };
    for (int i = 0; i < 4; i++) {
        if (i) csv_buf_putc(&b, ',');
        csv_put_field(&b, f[i], strlen(f[i]));
    }
    csv_buf_putc(&b, '\n');
    CHECK(!strcmp(b.p, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\n"), "csv: writer quotes only when needed");
    CHECK(csv_all(b.p, out, sizeof out) == 1 && !strcmp(out, "plain|a,b|say \"hi\"|two\nlines;"),
          "csv: written row reads back");
    b.n = 0;
    csv_put_json_str(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    CHECK(!strcmp(b.p, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\""), "json: string escapes, UTF-8 passes through");
    csv_buf_free(&b);

    /* UTF-8 validation (Unicode table 3-7) */
    CHECK(csv_utf8_check("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10) == 10, "utf8: 1-4 byte sequences");
    CHECK(csv_utf8_check("ab\xc0\xaf", 4) == 2, "utf8: overlong 2-byte form");
    CHECK(csv_utf8_check("\xe0\x80\xaf", 3) == 0, "utf8: overlong 3-byte form");
    CHECK(csv_utf8_check("x\xed\xa0\x80", 4) == 1, "utf8: surrogate");
    CHECK(csv_utf8_check("\xf4\x90\x80\x80", 4) == 0, "utf8: above U+10FFFF");
    CHECK(csv_utf8_check("ok\xe2\x82", 4) == 2, "utf8: truncated at end");
    CHECK(csv_utf8_check("\x80", 1) == 0, "utf8: lone continuation byte");
    CHECK(csv_utf8_check("\xf4\x8f\xbf\xbf", 4) == 4, "utf8: U+10FFFF is valid");
}

/* ---- the rule ---- */

static int rule(const char *organ, const char *desc, const char *conc, int flags, const char *want_text) {
    struct csv_buf t = { 0 };
    int ab = report_rule(organ, desc, desc ? strlen(desc) : 0, conc, conc ? strlen(conc) : 0, flags, &t);
    int ok = t.p && !strcmp(t.p, want_text);
    if (!ok) printf("# got '%s'\n", t.p ? t.p : "(null)");
    csv_buf_free(&t);
    return ok ? ab : -1;
}

static void test_rule(void) {
    CHECK(rule("lung", NULL, NULL, 0, "lung shows no significant abnormalities.") == 0, "rule: nothing = normal");
    CHECK(rule("heart", "Normal size", NULL, 0, "heart shows no significant abnormalities.Normal size.") == 0,
          "rule: '.' appended to findings, no separator");
    CHECK(rule("lung", "Clear.", "Emphysema", 0, "Emphysema.Clear.") == 1, "rule: impression first, abnormal");
    CHECK(rule("lung", "", "", 0, "lung shows no significant abnormalities.") == 0, "rule: empty texts as absent");
    CHECK(rule("aorta", "Plaque \"calcified\" (arch).", "'Ectatic' (4 cm)", 0,
               "Ectatic 4 cm.Plaque calcified arch.") == 1,
          "rule: quotes and parentheses removed after joining");
    CHECK(rule("lung", "Nodule \"5 mm.\"", NULL, 0, "lung shows no significant abnormalities.Nodule 5 mm..") == 0,
          "rule: '.' test before removal (double period)");
    CHECK(rule("heart", NULL, "(", 0, ".") == 1, "rule: impression of removed characters only is abnormal");
    CHECK(rule("lung", NULL, "lung shows no significant abnormalities. Scar.", 0,
               "lung shows no significant abnormalities. Scar.") == 0,
          "rule: impression starting with the normal sentence is normal");
    CHECK(rule("lung", NULL, "Lung shows no significant abnormalities.", 0,
               "Lung shows no significant abnormalities.") == 1,
          "rule: the normal sentence is case-sensitive");
    CHECK(rule("heart", "Normal.", "", REPORT_RELEASED_EMPTY, ".Normal.") == 1,
          "rule: released code: empty impression gets '.' and is abnormal");
    CHECK(rule("aorta", "", NULL, REPORT_RELEASED_EMPTY, "aorta shows no significant abnormalities..") == 0,
          "rule: released code: empty findings gets '.'");
    CHECK(rule("lung", "caf\xc3\xa9 \xe2\x80\x9cx\xe2\x80\x9d", NULL, 0,
               "lung shows no significant abnormalities.caf\xc3\xa9 \xe2\x80\x9cx\xe2\x80\x9d.") == 0,
          "rule: non-ASCII quotes are kept");
}

/* ---- ids, keys, organs ---- */

static void test_ids(void) {
    char b[128];
    CHECK(report_scan_id("valid_1_a_1.nii.gz", b, sizeof b) == 1 && !strcmp(b, "valid_1_a"), "scan id: valid volume");
    CHECK(report_scan_id("/data/train_12345_bc_10.nii.gz", b, sizeof b) == 1 && !strcmp(b, "train_12345_bc"),
          "scan id: directory, two letters, two-digit reconstruction");
    CHECK(report_scan_id("valid_1_a", b, sizeof b) == 0 && !strcmp(b, "valid_1_a"), "scan id: a scan id unchanged");
    CHECK(report_scan_id("valid_1_a_1.nii", b, sizeof b) == 1 && !strcmp(b, "valid_1_a"), "scan id: .nii");
    CHECK(report_scan_id("case_1_a_1.nii.gz", b, sizeof b) == 0 && !strcmp(b, "case_1_a_1"),
          "scan id: other datasets keep their name");
    CHECK(report_scan_id("valid_1_A_1", b, sizeof b) == 0 && !strcmp(b, "valid_1_A_1"), "scan id: upper-case scan");
    CHECK(report_scan_id("valid_x_a_1", b, sizeof b) == 0, "scan id: patient must be digits");
    CHECK(report_scan_id("valid_1_a_1b", b, sizeof b) == 0, "scan id: reconstruction must be digits");
    report_volume_id("dir/valid_3_b_2.nii.gz", b, sizeof b);
    CHECK(!strcmp(b, "valid_3_b_2"), "volume id");

    CHECK(org_key_norm("  Thoracic__Aorta - x ", b, sizeof b) == 16 && !strcmp(b, "thoracic aorta x"),
          "key form: case, separators, trim");
    CHECK(org_key_norm("\xc3\x89sophage", b, sizeof b) && !strcmp(b, "\xc3\x89sophage"),
          "key form: non-ASCII bytes unchanged");

    struct org_set o;
    org_set_default(&o);
    enum org_match how;
    CHECK(org_find(&o, "heart", &how) == 1 && how == ORG_EXACT, "organ: exact");
    CHECK(org_find(&o, " Heart", &how) == 1 && how == ORG_CASE, "organ: case and space");
    CHECK(org_find(&o, "LUNGS", &how) == 0 && how == ORG_ALIAS, "organ: alias any case");
    CHECK(org_find(&o, "thoracic-aorta", &how) == 3 && how == ORG_ALIAS, "organ: alias with separator");
    CHECK(org_find(&o, "mediastinum", &how) == -1 && how == ORG_UNKNOWN, "organ: unknown");

    struct idset *s = idset_new();
    char id[32], src[32];
    int dup = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "valid_%d_a", i);
        snprintf(src, sizeof src, "f:%d", i);
        dup += idset_add(s, id, src, (uint64_t)i, NULL) != NULL;
    }
    uint64_t tag = 0;
    const char *first = idset_add(s, "valid_4321_a", "g", 0, &tag);
    CHECK(dup == 0 && first && !strcmp(first, "f:4321") && tag == 4321, "idset: duplicate found after growth");
    CHECK(idset_get(s, "valid_5000_a", NULL) == NULL, "idset: absent id");
    idset_free(s);
}

/* ---- config files equal the compiled-in defaults ---- */

static void test_config(struct tn_arena *a) {
    const char *root = getenv("CT_ROOT");
    char p[1024];
    struct org_set def, got;
    org_set_default(&def);
    snprintf(p, sizeof p, "%s/pipelines/report-organs.yaml", root ? root : ".");
    int rc = org_set_load(p, a, &got);
    if (rc != 0) printf("# %s\n", ct_lasterr());
    CHECK(rc == 0 && org_set_equal(&def, &got) && org_set_equal(&got, &def),
          "config: pipelines/report-organs.yaml equals the compiled-in organ set");
    struct org_abn tdef, tgot;
    org_abn_default(&tdef);
    snprintf(p, sizeof p, "%s/pipelines/ct-rate-abnormalities.yaml", root ? root : ".");
    rc = org_abn_load(p, a, &tgot);
    if (rc != 0) printf("# %s\n", ct_lasterr());
    CHECK(rc == 0 && org_abn_equal(&tdef, &tgot), "config: pipelines/ct-rate-abnormalities.yaml equals the default");
    CHECK(tdef.n == 18 && tdef.n_items == 16 && org_abn_check_organs(&tdef, &def) == 0,
          "config: 18 abnormalities, 16 evaluated on known organs");
    CHECK(!strcmp(tdef.names[tdef.items[1].abn], "Atelectasis") && !strcmp(tdef.items[1].negative, "Not Atelectatic."),
          "config: item 2 is Atelectasis / 'Not Atelectatic.'");
    org_set_default(&got);
    got.names[3] = "aortas";
    CHECK(!org_set_equal(&def, &got), "config: equality notices a changed organ");
}

/* ---- payloads, parsing, normalisation ---- */

static int payload(const char *s, enum report_syntax hint, struct tn_arena *a, const char *want, int want_flags) {
    char *out;
    int flags = 0;
    enum report_syntax syn = REPORT_AUTO;
    if (report_payload(s, strlen(s), hint, a, &out, &flags, &syn) != 0) return 0;
    /* compare with surrounding blanks squeezed out */
    size_t b = 0, e = strlen(out);
    while (b < e && (out[b] == ' ' || out[b] == '\n')) b++;
    while (e > b && (out[e - 1] == ' ' || out[e - 1] == '\n')) e--;
    int ok = strlen(out) == strlen(s) && e - b == strlen(want) && !memcmp(out + b, want, e - b) && flags == want_flags;
    if (!ok) printf("# payload '%.*s' flags %d\n", (int)(e - b), out + b, flags);
    return ok;
}

static struct report_in norm(const char *text, struct tn_arena *a, int *rc) {
    struct report_node **roots;
    int nr, flags;
    struct report_in in;
    struct org_set o;
    org_set_default(&o);
    memset(&in, 0, sizeof in);
    *rc = report_parse_text(text, strlen(text), "t", 1, REPORT_AUTO, a, &roots, &nr, &flags);
    if (*rc == 0) *rc = report_normalise(&o, roots[0], flags, "hint_1_a", 0, a, &in);
    return in;
}

static int has_note(const struct report_in *in, enum report_sev sev, const char *sub) {
    for (int i = 0; i < in->n_notes; i++)
        if (in->notes[i].sev == sev && strstr(in->notes[i].msg, sub)) return 1;
    return 0;
}

static void test_parse(struct tn_arena *a) {
    CHECK(payload("{\"a\": 1}", REPORT_AUTO, a, "{\"a\": 1}", 0), "payload: bare JSON untouched");
    CHECK(payload("```json\n{\"a\": 1}\n```\n", REPORT_AUTO, a, "{\"a\": 1}", REPORT_F_FENCE), "payload: fence");
    CHECK(payload("Here:\n~~~~\n{\"a\": 1}\n~~~~\nBye", REPORT_AUTO, a, "{\"a\": 1}", REPORT_F_FENCE | REPORT_F_PROSE),
          "payload: tilde fence with prose around");
    CHECK(payload("```\n{\"a\": 1}```", REPORT_AUTO, a, "{\"a\": 1}", REPORT_F_FENCE), "payload: closing fence glued");
    CHECK(payload("```json\n{\"a\": 1}\n", REPORT_AUTO, a, "{\"a\": 1}", REPORT_F_FENCE), "payload: unclosed fence");
    CHECK(payload("Sure: {\"a\": {\"b\": 2}} ok", REPORT_JSON, a, "{\"a\": {\"b\": 2}}", REPORT_F_BRACE | REPORT_F_PROSE),
          "payload: JSON cut out of prose");
    CHECK(payload("findings: {lung: x}\n", REPORT_AUTO, a, "findings: {lung: x}", 0),
          "payload: YAML flow map left alone");
    char *po;
    int fl = 0;
    enum report_syntax syn = REPORT_AUTO;
    const char *two = "```\n{}\n```\ntext\n```\n{}\n```\n";
    CHECK(report_payload(two, strlen(two), REPORT_AUTO, a, &po, &fl, &syn) != 0 &&
              strstr(ct_lasterr(), "more than one code block"),
          "payload: two code blocks refused");
    fl = 0;
    const char *y = "```yaml\nfindings: {}\n```";
    CHECK(report_payload(y, strlen(y), REPORT_AUTO, a, &po, &fl, &syn) == 0 && syn == REPORT_YAML,
          "payload: info string selects YAML");

    struct report_node **roots;
    int nr, flags;
    const char *bad = "{\"a\": 1,\n \"a\": 2}";
    CHECK(report_parse_text(bad, strlen(bad), "d.json", 1, REPORT_AUTO, a, &roots, &nr, &flags) != 0 &&
              strstr(ct_lasterr(), "d.json:2:") && strstr(ct_lasterr(), "duplicate"),
          "parse: duplicate JSON key with line");
    const char *u = "{\"a\": \"x\"}\n{\"b\": \"\xff\"}";
    CHECK(report_parse_text(u, strlen(u), "u.jsonl", 7, REPORT_AUTO, a, &roots, &nr, &flags) != 0 &&
              strstr(ct_lasterr(), "u.jsonl:8:8: invalid UTF-8"),
          "parse: invalid UTF-8 position offset by line0");
    const char *ys = "a: 1\n---\n- {b: 2}\n- {c: 3}\n";
    CHECK(report_parse_text(ys, strlen(ys), "y", 1, REPORT_YAML, a, &roots, &nr, &flags) == 0 && nr == 3 &&
              roots[2]->line == 4,
          "parse: YAML documents and sequences give one root each, with lines");
    CHECK(report_parse_text(" \n", 2, "e", 1, REPORT_AUTO, a, &roots, &nr, &flags) != 0 &&
              strstr(ct_lasterr(), "empty"),
          "parse: empty text");

    int rc;
    struct report_in in = norm("{\"scan_id\": \"valid_9_b_2.nii.gz\", \"findings\": {\"Lungs\": \" Clear. \"}, "
                               "\"impression\": {\"heart\": null, \"aorta\": \"None\"}}",
                               a, &rc);
    CHECK(rc == 0 && !strcmp(in.scan_id, "valid_9_b") && has_note(&in, REPORT_FIX, "volume name") &&
              has_note(&in, REPORT_FIX, "'Lungs' read as lung") && has_note(&in, REPORT_FIX, "whitespace") &&
              has_note(&in, REPORT_FIX, "impression.heart is null") && has_note(&in, REPORT_WARN, "'None'") &&
              in.desc[0] && !strcmp(in.desc[0], "Clear.") && in.conc[1] == NULL && in.conc[3] &&
              !strcmp(in.conc[3], "None"),
          "normalise: volume name, alias, trim, null, placeholder warning");
    in = norm("{\"findings\": {\"lung\": \"a\", \"lungs\": \"b\"}, \"impression\": {\"trachea\": \"c\"}}", a, &rc);
    CHECK(rc != 0 && !strcmp(in.scan_id, "hint_1_a") && has_note(&in, REPORT_ERROR, "lung given twice") &&
              has_note(&in, REPORT_ERROR, "unknown organ 'trachea'"),
          "normalise: duplicate organ and unknown organ both reported; id from the hint");
    in = norm("{\"scan_id\": \"s\", \"findings\": {\"lung\": 3}}", a, &rc);
    CHECK(rc != 0 && has_note(&in, REPORT_ERROR, "findings.lung is a number") &&
              has_note(&in, REPORT_ERROR, "missing field 'impression'"),
          "normalise: wrong type and missing field");
    in = norm("{\"scan_id\": \"s1\", \"answer\": \"```json\\n{\\\"scan_id\\\": \\\"s2\\\", \\\"findings\\\": {}, "
              "\\\"impression\\\": {}}\\n```\"}",
              a, &rc);
    CHECK(rc != 0 && has_note(&in, REPORT_ERROR, "differs"), "normalise: answer naming another scan");
    in = norm("{\"id\": \"s\", \"answer\": \"I cannot help with that.\"}", a, &rc);
    CHECK(rc != 0 && has_note(&in, REPORT_ERROR, "answer:1:"), "normalise: answer that is not JSON");
    in = norm("{\"scan_id\": \"s\", \"answer\": \"findings:\\n  lung: Nodule.\\nimpression:\\n  lung: Nodule seen.\"}",
              a, &rc);
    CHECK(rc == 0 && in.conc[0] && !strcmp(in.conc[0], "Nodule seen.") && in.desc[0] && !strcmp(in.desc[0], "Nodule.") &&
              has_note(&in, REPORT_FIX, "answer read as YAML"),
          "normalise: an answer in bare YAML (no code fence) is read as YAML");
    in = norm("{\"scan_id\": \"s\", \"answer\": \"note: this is not a report\"}", a, &rc);
    CHECK(rc != 0 && has_note(&in, REPORT_ERROR, "answer:1:"), "normalise: a YAML map without report keys stays refused");
    in = norm("scan_id: s\nfindings:\n  lung: [a, 2]\nimpression: {}\n", a, &rc);
    CHECK(rc == 0 && in.desc[0] && !strcmp(in.desc[0], "a 2"), "normalise: YAML list joined");
    in = norm("scan_id: s\nfindings: {lung: {x: 1}}\nimpression: {}\n", a, &rc);
    CHECK(rc != 0 && has_note(&in, REPORT_ERROR, "findings.lung is a map") && has_note(&in, REPORT_ERROR, "(at 2:"),
          "normalise: YAML error with position");

    /* the fVLM pair: strings only, no trimming */
    struct org_set o;
    org_set_default(&o);
    const char *d = "{\"lung\": \" x \", \"heart\": \"\"}";
    CHECK(report_parse_text(d, strlen(d), "d", 1, REPORT_JSON_STRICT, a, &roots, &nr, &flags) == 0, "fvlm: parse");
    rc = report_from_fvlm(&o, "valid_1_a", roots[0], NULL, a, &in);
    CHECK(rc == 0 && in.desc[0] && !strcmp(in.desc[0], " x ") && in.desc[1] && in.desc_n[1] == 0 && !in.conc[0] &&
              has_note(&in, REPORT_FIX, "conc_info"),
          "fvlm: values verbatim, empty kept, missing impression entry noted");
    d = "{\"lung\": null}";
    report_parse_text(d, strlen(d), "d", 1, REPORT_JSON_STRICT, a, &roots, &nr, &flags);
    CHECK(report_from_fvlm(&o, "valid_1_a", roots[0], roots[0], a, &in) != 0 &&
              has_note(&in, REPORT_ERROR, "findings.lung is null"),
          "fvlm: null is an error");

    /* apply */
    in = norm("{\"scan_id\": \"s\", \"findings\": {\"heart\": \"Big (16 cm)\"}, \"impression\": {\"heart\": "
              "\"Cardiomegaly\"}}",
              a, &rc);
    struct report_out out;
    report_apply(&o, &in, 0, a, &out);
    CHECK(rc == 0 && out.n == 4 && out.abnormal[0] == 0 && out.abnormal[1] == 1 &&
              !strcmp(out.text[1], "Cardiomegaly.Big 16 cm.") &&
              !strcmp(out.text[2], "esophagus shows no significant abnormalities."),
          "apply: per-organ labels and texts");
}

/* ---- CT-RATE CSV columns, prompt ---- */

static int first_row(const char *text, struct csv_reader **r, struct csv_row *row) {
    *r = csv_reader_mem(text, strlen(text), "l.csv");
    return csv_read(*r, row);
}

static void test_ctrate(struct tn_arena *a) {
    (void)a;
    struct org_abn t;
    org_abn_default(&t);
    char head[2048] = "VolumeName";
    for (int i = t.n - 1; i >= 0; i--) {       /* reversed column order is fine */
        strcat(head, ",");
        strcat(head, t.names[i]);
    }
    char text[4096];
    snprintf(text, sizeof text, "%s\nvalid_1_a_1.nii.gz,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\nv2,0,1\nv3,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n",
             head);
    struct csv_reader *r;
    struct csv_row row;
    struct report_label_cols c;
    first_row(text, &r, &row);
    CHECK(report_label_header(&t, &row, "l.csv", &c) == 0 && c.volume == 0 && c.abn[0] == 18,
          "labels: header in any order");
    const char *vol;
    int lab[ORG_MAX_ABN];
    CHECK(csv_read(r, &row) == 1 && report_label_row(&t, &c, &row, "l.csv", &vol, lab) == 0 && lab[0] == 0 &&
              lab[17] == 1 && !strcmp(vol, "valid_1_a_1.nii.gz"),
          "labels: values mapped by column name");
    CHECK(csv_read(r, &row) == 1 && report_label_row(&t, &c, &row, "l.csv", &vol, lab) != 0 &&
              strstr(ct_lasterr(), "l.csv:3: 3 fields, expected 19"),
          "labels: wrong field count");
    CHECK(csv_read(r, &row) == 1 && report_label_row(&t, &c, &row, "l.csv", &vol, lab) != 0 &&
              strstr(ct_lasterr(), "l.csv:4: Interlobular septal thickening: '2' is not 0 or 1"),
          "labels: value other than 0/1");
    csv_reader_close(r);
    first_row("VolumeName,Emphysema\n", &r, &row);
    CHECK(report_label_header(&t, &row, "l.csv", &c) != 0 && strstr(ct_lasterr(), "missing column 'Medical material'"),
          "labels: missing column");
    csv_reader_close(r);
    first_row("VolumeName,Emphysema,Foo\n", &r, &row);
    CHECK(report_label_header(&t, &row, "l.csv", &c) != 0 && strstr(ct_lasterr(), "unexpected column 'Foo'"),
          "labels: unknown column");
    csv_reader_close(r);

    struct report_text_cols tc;
    first_row("Findings_EN,x,VolumeName,Impressions_EN\n", &r, &row);
    CHECK(report_text_header(&row, "r.csv", &tc) == 0 && tc.findings == 0 && tc.volume == 2 && tc.impression == 3,
          "reports: columns found by name");
    csv_reader_close(r);

    struct org_set o;
    org_set_default(&o);
    struct csv_buf p = { 0 };
    report_prompt(&o, report_prompt_template, "F1.\nF2.", "I1.", &p);
    CHECK(strstr(p.p, "organs only: lung, heart, esophagus, aorta.") && strstr(p.p, "FINDINGS:\nF1.\nF2.\n") &&
              strstr(p.p, "IMPRESSION:\nI1.\n") && !strstr(p.p, "{{"),
          "prompt: placeholders filled");
    CHECK(report_template_check(report_prompt_template) == 0, "prompt: the built-in template checks");
    CHECK(report_template_check("{{findings}} {{oops}} {{impression}}") != 0 && strstr(ct_lasterr(), "{{oops}}"),
          "prompt: unknown placeholder refused");
    CHECK(report_template_check("{{findings}} only") != 0, "prompt: template without {{impression}} refused");
    report_answer_schema(&o, &p);
    CHECK(strstr(p.p, "\"required\": [\"findings\", \"impression\"]") && strstr(p.p, "\"aorta\": {\"type\": \"string\""),
          "prompt: answer schema names the organs");
    csv_buf_free(&p);
}

int main(void) {
    struct tn_arena *a = tn_arena_new(0);
    test_csv();
    test_rule();
    test_ids();
    test_config(a);
    test_parse(a);
    test_ctrate(a);
    tn_arena_free(a);
    return check_failures != 0;
}
