/*
 * report-prompt.c - the prompt that asks an LLM to structure a report by
 * organ (ctvis's own: the papers never published theirs), template checks,
 * and the JSON Schema of the answer.  See report.h.
 */
#include "report.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ct.h"

/* ---- the LLM prompt ---- */

const char report_prompt_template[] =
    "You split a chest CT radiology report by organ.\n"
    "\n"
    "Below are the FINDINGS and the IMPRESSION of one report. Split them for these organs only: {{organs}}.\n"
    "\n"
    "Rules:\n"
    "1. \"findings\": for each organ, the sentences of the FINDINGS that describe that organ, copied word for word "
    "in their original order and joined by single spaces. Leave out an organ that the FINDINGS do not mention.\n"
    "2. \"impression\": for each organ, the sentences of the IMPRESSION that report an abnormality of that organ, "
    "copied word for word. Leave out every organ that the IMPRESSION does not mention or calls normal: never write "
    "an empty string, \"none\", \"normal\" or \"not mentioned\".\n"
    "3. A sentence about several of these organs goes to each of them.\n"
    "4. The pleura (pleural effusion, thickening), the airways and the bronchi belong to lung; the pericardium and "
    "the coronary arteries to heart; a hiatal hernia to esophagus; the thoracic aorta and arterial wall "
    "calcification to aorta. Ignore every other structure (lymph nodes, thyroid, bones, upper abdomen, ...).\n"
    "5. Do not paraphrase, translate, summarise, correct or add anything.\n"
    "6. Reply with one JSON object and nothing else (no Markdown, no comments), of this shape:\n"
    "{{example}}\n"
    "\n"
    "FINDINGS:\n"
    "{{findings}}\n"
    "\n"
    "IMPRESSION:\n"
    "{{impression}}\n";

static void put_example(const struct org_set *o, struct csv_buf *out) {
    csv_buf_puts(out, "{\"findings\": {");
    for (int i = 0; i < o->n; i++) csv_buf_printf(out, "%s\"%s\": \"...\"", i ? ", " : "", o->names[i]);
    csv_buf_printf(out, "}, \"impression\": {\"%s\": \"...\"}}", o->names[0]);
}

void report_prompt(const struct org_set *o, const char *tmpl, const char *findings, const char *impression,
                   struct csv_buf *out) {
    out->n = 0;
    csv_buf_put(out, "", 0);
    for (const char *p = tmpl; *p;) {
        const char *q = strstr(p, "{{");
        if (!q) {
            csv_buf_puts(out, p);
            break;
        }
        csv_buf_put(out, p, (size_t)(q - p));
        if (!strncmp(q, "{{organs}}", 10)) {
            for (int i = 0; i < o->n; i++) csv_buf_printf(out, "%s%s", i ? ", " : "", o->names[i]);
            p = q + 10;
        } else if (!strncmp(q, "{{example}}", 11)) {
            put_example(o, out);
            p = q + 11;
        } else if (!strncmp(q, "{{findings}}", 12)) {
            csv_buf_puts(out, findings);
            p = q + 12;
        } else if (!strncmp(q, "{{impression}}", 14)) {
            csv_buf_puts(out, impression);
            p = q + 14;
        } else {
            csv_buf_put(out, q, 2);
            p = q + 2;
        }
    }
}

int report_template_check(const char *tmpl) {
    int seen_f = 0, seen_i = 0;
    for (const char *q = strstr(tmpl, "{{"); q; q = strstr(q + 2, "{{")) {
        const char *e = strstr(q, "}}");
        if (!e) return ct_seterr("'{{' without '}}'");
        size_t n = (size_t)(e + 2 - q);
        if (n == 12 && !strncmp(q, "{{findings}}", 12)) seen_f = 1;
        else if (n == 14 && !strncmp(q, "{{impression}}", 14)) seen_i = 1;
        else if (!(n == 10 && !strncmp(q, "{{organs}}", 10)) && !(n == 11 && !strncmp(q, "{{example}}", 11)))
            return ct_seterr("unknown placeholder '%.*s' (known: {{organs}} {{example}} {{findings}} {{impression}})",
                             (int)(n > 60 ? 60 : n), q);
    }
    if (!seen_f || !seen_i) return ct_seterr("the template must contain {{findings}} and {{impression}}");
    return 0;
}

void report_answer_schema(const struct org_set *o, struct csv_buf *out) {
    out->n = 0;
    csv_buf_puts(out, "{\"type\": \"object\", \"properties\": {");
    for (int f = 0; f < 2; f++) {
        csv_buf_printf(out, "%s\"%s\": {\"type\": \"object\", \"properties\": {", f ? ", " : "",
                       f ? "impression" : "findings");
        for (int i = 0; i < o->n; i++)
            csv_buf_printf(out, "%s\"%s\": {\"type\": \"string\", \"minLength\": 1}", i ? ", " : "", o->names[i]);
        csv_buf_puts(out, "}, \"additionalProperties\": false}");
    }
    csv_buf_puts(out, "}, \"required\": [\"findings\", \"impression\"], \"additionalProperties\": false}");
}

