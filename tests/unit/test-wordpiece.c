/* test-wordpiece.c - lib/wordpiece on a small in-memory vocabulary.  Expected ids are worked out
 * by hand from the vocabulary below and BertTokenizer's rules (wordpiece.h); the large parity
 * test against the Python transcription is tests/ref/test_tokenizer.py. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ct.h"
#include "wordpiece.h"

/* ids: line numbers from 0 */
static const char VOCAB[] =
    "[PAD]\n"      /* 0 */
    "[UNK]\n"      /* 1 */
    "[CLS]\n"      /* 2 */
    "[SEP]\n"      /* 3 */
    "[MASK]\n"     /* 4 */
    "un\n"         /* 5 */
    "##aff\n"      /* 6 */
    "##able\n"     /* 7 */
    "unaffable\r\n" /* 8: CRLF line end */
    "a\r"          /* 9: CR line end */
    "-\n"          /* 10 */
    "b\n"          /* 11 */
    "emphyseme\n"  /* 12 */
    "\xe8\x82\xba\n"                 /* 13: U+80BA (lung) */
    "\xe6\xb0\x94\n"                 /* 14: U+6C14 */
    "\xce\xbf\xce\xb4\xce\xbf\xcf\x82\n" /* 15: "οδος" with final sigma (never produced) */
    "\xce\xbf\xce\xb4\xce\xbf\xcf\x83\n" /* 16: "οδοσ" */
    "i\n"          /* 17 */
    ".\n"          /* 18 */
    "##a\n"        /* 19 */
    "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab\n" /* 20: the jamo of U+D55C (NFD) */
    "x\xf0\x9d\x85\xa5\xf0\x9d\x85\xad\n"   /* 21: x U+1D165 U+1D16D (canonical order) */
    "b\n"          /* 22: b again: the last id wins */
    "##\xce\xb1\n";  /* 23: ##α */

static struct wp_vocab *V;

/* tokenise s; "2 5 6 3" style string of the ids into out */
static int enc(const char *s, int max_len, char *out, size_t n, int *full) {
    int32_t ids[512];
    int k = wp_encode(V, s, strlen(s), ids, max_len, full);
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < k && o < n; i++) o += (size_t)snprintf(out + o, n - o, i ? " %d" : "%d", ids[i]);
    return k;
}

static int is(const char *s, const char *want) {
    char got[2048];
    int full;
    enc(s, 384, got, sizeof got, &full);
    if (strcmp(got, want)) fprintf(stderr, "  '%s': got '%s', want '%s'\n", s, got, want);
    return !strcmp(got, want);
}

int main(void) {
    V = wp_vocab_parse(VOCAB, sizeof VOCAB - 1, "t");
    CHECK(V != NULL, "parse");
    if (!V) return 1;
    CHECK(wp_vocab_size(V) == 24, "size (CRLF and CR end lines)");
    CHECK(wp_vocab_id(V, "unaffable") == 8 && wp_vocab_id(V, "a") == 9 && wp_vocab_id(V, "-") == 10, "line ends");
    CHECK(wp_vocab_id(V, "b") == 22, "repeated token keeps its last id");
    CHECK(wp_vocab_id(V, "##aff") == 6 && wp_vocab_id(V, "aff") == -1, "## pieces apart from word starts");
    CHECK(strcmp(wp_vocab_token(V, 7), "##able") == 0 && wp_vocab_token(V, 24) == NULL, "token by id");

    CHECK(is("unaffable", "2 8 3"), "whole word first");
    CHECK(is("unaffablea", "2 8 19 3"), "greedy longest match");
    CHECK(is("unaffa", "2 5 6 19 3"), "greedy pieces");
    CHECK(is("unaffableb", "2 1 3"), "no match: [UNK] for the whole word");
    CHECK(is("a-b", "2 9 10 22 3"), "punctuation split");
    CHECK(is("  a\t\nb\r ", "2 9 22 3"), "whitespace");
    CHECK(is("a\xe2\x80\xa8" "b", "2 9 22 3"), "U+2028 splits words (str.split)");
    CHECK(is("a\x01\x7f\xc2\x85\xef\xbf\xbd\xe2\x80\x8b" "b", "2 1 3"), "controls, U+FFFD, Cf dropped: 'ab'");
    CHECK(is("\xc3\x89mphys\xc3\xa8me", "2 12 3"), "lower case and accents stripped");
    CHECK(is("E\xcc\x81MPHYSE\xcc\x80ME.", "2 12 18 3"), "combining accents stripped");
    CHECK(is("\xe8\x82\xba\xe6\xb0\x94", "2 13 14 3"), "CJK ideographs split");
    CHECK(is("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "2 16 3"), "capital sigma at a word end becomes sigma, not final sigma");
    CHECK(is("\xce\x9f\xce\x94\xce\x9f\xce\xa3\xce\x91", "2 16 23 3"), "medial sigma");
    CHECK(is("\xce\x9f\xce\x94\xce\x9f\xce\xa3.", "2 16 18 3"), "capital sigma before punctuation");
    CHECK(is("\xce\xbf\xce\xb4\xce\xbf\xcf\x82", "2 15 3"), "a final sigma in the text stays");
    CHECK(is("\xc4\xb0", "2 17 3"), "U+0130 lowers to i + U+0307, mark stripped");
    CHECK(is("\xed\x95\x9c", "2 20 3"), "Hangul syllable decomposed");
    CHECK(is("x\xf0\x9d\x85\xad\xf0\x9d\x85\xa5", "2 21 3"), "canonical reordering of marks (Mc kept)");
    CHECK(is("a[SEP]b [MASK]", "2 9 3 22 4 3"), "literal special tokens");
    CHECK(is("[sep] [CLS", "2 1 1 1 1 1 3"), "not special: lower case or unclosed");
    CHECK(is("", "2 3") && is(" \t", "2 3"), "empty");
    {
        char s[202];
        memset(s, 'a', 100);
        s[100] = 0;
        char want[1024] = "2 9";
        for (int i = 1; i < 100; i++) strcat(want, " 19");
        strcat(want, " 3");
        CHECK(is(s, want), "100 characters: WordPiece");
        memset(s, 'a', 101);
        s[101] = 0;
        CHECK(is(s, "2 1 3"), "101 characters: [UNK]");
    }
    {
        char got[256];
        int full;
        int k = enc("a a a a a", 4, got, sizeof got, &full);
        CHECK(k == 4 && full == 7 && strcmp(got, "2 9 9 3") == 0, "truncation keeps the first max-2 and [SEP]");
    }
    {
        int32_t ids[8];
        int full;
        CHECK(wp_encode(V, "a\xff", 2, ids, 8, &full) == -1 && strstr(ct_lasterr(), "invalid UTF-8"), "invalid UTF-8");
        CHECK(wp_encode(V, "a\0b", 3, ids, 8, &full) == 3 && ids[1] == 1, "NUL dropped: 'ab' is [UNK]");
    }
    /* malformed vocabularies */
    CHECK(!wp_vocab_parse("", 0, "e") && strstr(ct_lasterr(), "empty"), "empty vocab");
    CHECK(!wp_vocab_parse("[CLS]\n[SEP]\n", 12, "e") && strstr(ct_lasterr(), "no [UNK]"), "vocab without [UNK]");
    CHECK(!wp_vocab_parse("[UNK]\n[CLS]\n[SEP]\n\xc3\n", 20, "e") && strstr(ct_lasterr(), "line 4: invalid UTF-8"),
          "vocab with invalid UTF-8");
    CHECK(!wp_vocab_parse("[UNK]\n[CLS]\0\n[SEP]\n", 20, "e") && strstr(ct_lasterr(), "NUL"), "vocab with NUL");
    CHECK(!wp_vocab_load("/nonexistent/vocab.txt") && strstr(ct_lasterr(), "No such file"), "missing vocab file");
    CHECK(strcmp(wp_unicode_version_str(), "14.0.0") == 0, "Unicode version");
    wp_vocab_free(V);
    return check_failures != 0;
}
