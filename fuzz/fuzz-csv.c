/* fuzz-csv - the RFC 4180 reader (lib/csv.c) and the label/text CSV headers and
 * rows of report-label; the JSON/terminal escapers on every field. */
#include "csv.h"
#include "fuzz.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct org_abn abn;
    static int init;
    if (!init) {
        org_abn_default(&abn);
        init = 1;
    }
    struct csv_reader *r = csv_reader_mem((const char *)data, size, "fuzz.csv");
    if (!r) return 0;
    struct csv_row row;
    struct csv_buf b = { 0 };
    int first = 1;
    while (csv_read(r, &row) > 0) {
        if (first) {
            struct report_text_cols tc;
            (void)report_text_header(&row, "fuzz.csv", &tc);
            first = 0;
        }
        for (int i = 0; i < row.n; i++) {
            b.n = 0;
            csv_put_json_str(&b, row.fields[i], row.lens[i]);
            csv_put_term_str(&b, row.fields[i], row.lens[i]);
            csv_put_field(&b, row.fields[i], row.lens[i]);
        }
    }
    csv_buf_free(&b);
    csv_reader_close(r);
    return 0;
}
