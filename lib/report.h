/*
 * report.h - radiology reports structured by an LLM, turned into per-organ
 * normal/abnormal labels and texts with fVLM's rule (method.md §6.1), and the
 * CT-RATE ground-truth label table (§6.3).  Used by tools/report-label.c.
 *
 * Files: report-parse.c (texts -> trees; the only file including <jansson.h>),
 * report-norm.c (trees -> struct report_in, notes), report-rule.c (the §6.1
 * rule, ids, CT-RATE CSV columns), report-prompt.c (the LLM prompt).  Organ
 * sets and the CT-RATE items are lib/organs.h; id sets lib/idset.h.
 *
 * A structured report says, per organ, the report's *findings* sentences and
 * its *impression* sentences (an organ appears in the impression only when it
 * is abnormal).  Pipeline for one report:
 *
 *     text --report_parse_text--> report_node tree(s)      UTF-8 check, BOM, code
 *                                                           fences, JSON or YAML
 *          --report_normalise---> struct report_in          organ aliases, key
 *                                                           variants, notes
 *          --report_apply-------> struct report_out         the §6.1 rule
 *
 *     struct org_set org;
 *     org_set_default(&org);                           // lung heart esophagus aorta
 *     struct report_node **roots; int n_roots, flags;
 *     if (report_parse_text(txt, n, "a.json", 1, REPORT_AUTO, arena, &roots, &n_roots, &flags) != 0)
 *         ct_die("%s", ct_lasterr());                  // "a.json:3:14: ..."
 *     struct report_in in;
 *     if (report_normalise(&org, roots[0], flags, "a", 0, arena, &in) != 0)
 *         ct_die("%s", report_first_error(&in));
 *     struct report_out out;
 *     report_apply(&org, &in, 0, arena, &out);          // out.abnormal[i], out.text[i]
 *
 * Nothing here prints or exits; failures return -1 with ct_lasterr() set, or
 * are collected as notes on the report (report_normalise), so that a validator
 * can list every problem of an answer at once.
 */
#ifndef CT_REPORT_H
#define CT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "csv.h"
#include "organs.h"
#include "tensor.h"

/* Organ sets (struct org_set), key forms (org_key_norm) and the CT-RATE
 * abnormality items (struct org_abn) are lib/organs.h. */

/* ---- volume names and scan ids ---- */

/* Record id of a CT-RATE volume: the base name without ".nii.gz" / ".nii"
 * ("data/valid_1_a_1.nii.gz" -> "valid_1_a_1"), as ct-import names records. */
void report_volume_id(const char *name, char *out, size_t n);
/* Scan id of a volume name: the volume id without its reconstruction number
 * when it has CT-RATE's form (train|valid|test)_<patient>_<scan>_<recon>
 * ("valid_1_a_2.nii.gz" -> "valid_1_a"), the volume id otherwise.  All
 * reconstructions of a scan share its report, which fVLM keys by scan id.
 * Returns 1 when the reconstruction number was dropped, 0 otherwise. */
int  report_scan_id(const char *name, char *out, size_t n);

/* ---- parsed documents ---- */

enum report_ntype { RN_NULL, RN_STR, RN_NUM, RN_BOOL, RN_LIST, RN_MAP };

struct report_node {
    enum report_ntype    type;
    const char          *s;          /* RN_STR text (also the spelling of RN_NUM / RN_BOOL) */
    size_t               len;        /* bytes in s */
    int                  n;          /* RN_LIST items, RN_MAP pairs */
    const char         **keys;       /* RN_MAP keys */
    struct report_node **items;      /* RN_LIST items, RN_MAP values */
    int                  line, col;  /* 1-based position in its text (YAML); 0 when unknown (JSON) */
};

const char *report_ntype_name(enum report_ntype t);      /* "a string", "a map", ... */

/* What report_parse_text did to the text (bits of *flags). */
enum {
    REPORT_F_BOM   = 1,              /* a UTF-8 byte-order mark was skipped */
    REPORT_F_FENCE = 2,              /* the payload was inside a Markdown code fence */
    REPORT_F_PROSE = 4,              /* text outside the fence / the JSON object was dropped */
    REPORT_F_BRACE = 8,              /* the JSON object was cut out of surrounding text (no fence) */
    REPORT_F_YAML  = 16,             /* an LLM answer that is not JSON was read as YAML (report_normalise) */
};

enum report_syntax {
    REPORT_AUTO,                     /* JSON when the payload starts with '{' or '[', YAML otherwise */
    REPORT_JSON,                     /* an LLM answer expected to be JSON (prose around it is cut) */
    REPORT_YAML,
    REPORT_JSON_STRICT,              /* JSON as is: no code fence or prose handling (JSON lines, fVLM files) */
};

/* Blank out everything of an LLM answer that is not its payload, keeping the
 * length and the newlines so that parser positions stay those of the original:
 * the body of the one Markdown code fence (``` or ~~~) when there is one, else
 * the text from the first '{' to the last '}' when the text does not start with
 * '{' but holds one and hint is not YAML, else the text itself.  Sets
 * REPORT_F_FENCE/PROSE/BRACE in *flags and, when a fence names it, *syntax.
 * The copy is in the arena.  -1 + lasterr when the answer holds more than one
 * code block. */
int report_payload(const char *s, size_t n, enum report_syntax hint, struct tn_arena *a, char **out,
                   int *flags, enum report_syntax *syntax);

/* Parse a text holding structured reports: UTF-8 check, byte-order mark, code
 * fence (report_payload), then JSON (jansson, strict: duplicate keys refused)
 * when the payload starts with '{' or '[' or syntax is REPORT_JSON, YAML
 * (lib/cfg) otherwise.  A JSON array or a YAML sequence gives one root per
 * item, a YAML stream one per document.  line0 is the line of text[0] in its
 * file (for JSON-lines); messages read "name:line:col: problem".
 * -1 + lasterr on invalid UTF-8, a syntax error or an empty text. */
int report_parse_text(const char *text, size_t n, const char *name, long line0, enum report_syntax syntax,
                      struct tn_arena *a, struct report_node ***roots, int *n_roots, int *flags);

/* ---- normalised reports ---- */

enum report_sev {
    REPORT_FIX,                      /* normalised: fences, synonyms, null ... (listed in `normalised`) */
    REPORT_WARN,                     /* accepted as is, but likely not what the prompt asked */
    REPORT_ERROR,                    /* the report cannot be used */
};

struct report_note {
    enum report_sev sev;
    const char     *msg;             /* "organ key 'Lungs' read as lung (alias)" */
};

struct report_in {
    const char         *scan_id;                       /* NULL until known */
    const char         *desc[ORG_MAX];       /* findings text per organ (NUL-terminated); NULL = absent */
    size_t              desc_n[ORG_MAX];
    const char         *conc[ORG_MAX];       /* impression text per organ (NUL-terminated); NULL = absent */
    size_t              conc_n[ORG_MAX];
    int                 n_notes, cap_notes;
    struct report_note *notes;                         /* in the arena */
    int                 n_fix, n_warn, n_error;
};

/* Options for report_normalise. */
enum {
    REPORT_N_FVLM = 1,               /* strict fVLM-file semantics: values must be strings, no null/list/trim */
};

/* Normalise one structured report (or an LLM answer wrapper {"scan_id", "answer"})
 * into in, collecting every problem as a note.  parse_flags (from
 * report_parse_text) become notes; id_hint is the scan id to use when the report
 * names none (from a file name), NULL for none.  Returns 0 when usable
 * (in->n_error == 0), -1 otherwise. */
int report_normalise(const struct org_set *o, const struct report_node *root, int parse_flags,
                     const char *id_hint, int options, struct tn_arena *a, struct report_in *in);

/* The fVLM pair: one scan's entry of desc_info.json and of conc_info.json
 * (either may be NULL when the scan is absent from that file). */
int report_from_fvlm(const struct org_set *o, const char *scan_id, const struct report_node *desc,
                     const struct report_node *conc, struct tn_arena *a, struct report_in *in);

/* Add a note (printf-style). */
void report_note_add(struct report_in *in, struct tn_arena *a, enum report_sev sev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The first error note, or "" */
const char *report_first_error(const struct report_in *in);

/* ---- the rule (method.md §6.1) ---- */

enum {
    REPORT_RELEASED_EMPTY = 1,       /* a present but empty text still gets '.' (released fVLM code) */
};

/* One organ: desc/conc are the findings and impression texts (NULL = absent).
 *   desc += '.' when non-empty and not ending in '.'; the same for conc;
 *   conc = "{organ} shows no significant abnormalities." when empty;
 *   text = conc + desc, then every '"', '\'', '(' and ')' removed;
 *   abnormal = text does not start with "{organ} shows no significant abnormalities."
 * With REPORT_RELEASED_EMPTY, "non-empty" reads "present" (fVLM's caption_datasets.py
 * appends '.' to a present empty string, so an empty impression is abnormal).
 * text is cleared first.  Returns abnormal (0 or 1). */
int report_rule(const char *organ, const char *desc, size_t desc_n, const char *conc, size_t conc_n, int flags,
                struct csv_buf *text);

struct report_out {
    const char  *scan_id;
    int          n;                             /* organs */
    const char **organs;                        /* borrowed from the organ set */
    int          abnormal[ORG_MAX];   /* 0 or 1 */
    const char  *text[ORG_MAX];       /* in the arena */
    size_t       text_n[ORG_MAX];
};

void report_apply(const struct org_set *o, const struct report_in *in, int flags, struct tn_arena *a,
                  struct report_out *out);

/* ---- CT-RATE CSV files ---- */

struct csv_row;

/* Column map of a multi-abnormality label CSV: VolumeName plus every
 * abnormality of t exactly once, in any order; no other column. */
struct report_label_cols {
    int n_cols;                      /* fields per row */
    int volume;                      /* column of VolumeName */
    int abn[ORG_MAX_ABN];         /* column of each abnormality (t->names order) */
};
int report_label_header(const struct org_abn *t, const struct csv_row *row, const char *name,
                        struct report_label_cols *c);
/* One data row: labels[i] in {0,1} for t->names[i]; *volume points into row.
 * -1 + lasterr "name:line: ..." on a wrong field count, an empty VolumeName or
 * a value other than 0 or 1. */
int report_label_row(const struct org_abn *t, const struct report_label_cols *c, const struct csv_row *row,
                     const char *name, const char **volume, int *labels);

/* Column map of a CT-RATE report CSV (VolumeName, Findings_EN, Impressions_EN; others ignored). */
struct report_text_cols {
    int n_cols, volume, findings, impression;
};
int report_text_header(const struct csv_row *row, const char *name, struct report_text_cols *c);

/* ---- the LLM prompt (ctvis's own; the papers never published theirs) ---- */

extern const char report_prompt_template[];   /* placeholders {{organs}} {{example}} {{findings}} {{impression}} */

/* -1 + lasterr when a template has an unknown {{placeholder}} or lacks
 * {{findings}} or {{impression}}. */
int  report_template_check(const char *tmpl);
/* Fill a template for one report into out (cleared first). */
void report_prompt(const struct org_set *o, const char *tmpl, const char *findings, const char *impression,
                   struct csv_buf *out);
/* The JSON Schema of the answer the prompt asks for (one line of JSON), for
 * servers that constrain their output to a schema. */
void report_answer_schema(const struct org_set *o, struct csv_buf *out);

#endif
