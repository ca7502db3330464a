/*
 * wordpiece.h - BERT's uncased tokenizer: HF BertTokenizer(do_lower_case=True) as the CXR-BERT
 * text encoder of ViSD-Boost uses it (method.md 3.1), without Python.
 *
 *     struct wp_vocab *v = wp_vocab_load("vocab.txt");          // NULL + lasterr
 *     int32_t ids[384];
 *     int n_full;
 *     int n = wp_encode(v, "Not Emphysema.", 14, ids, 384, &n_full);
 *     // ids = [CLS] not em ##phy ##se ##ma . [SEP]; n < n_full means truncated
 *     wp_vocab_free(v);
 *
 * The steps, each exactly as transformers' BertTokenizer (slow, Python) does them:
 *  0. the literal special tokens [PAD] [UNK] [CLS] [SEP] [MASK] in the text are split out first and
 *     become their ids (PreTrainedTokenizer.tokenize's added-token split); the rest is lower-cased
 *     code point by code point with Python's str.lower() (tokenize's pass for do_lower_case
 *     tokenizers, re.sub over "(.+?)"): full mapping (U+0130 -> i + U+0307) but no final-sigma
 *     context, Σ always becomes σ;
 *  1. text cleaning: NUL, U+FFFD and category C* code points are dropped (\t \n \r excepted),
 *     whitespace (space, \t, \n, \r, Zs) becomes a space;
 *  2. each CJK ideograph (BertTokenizer's block list) becomes a word of its own;
 *  3. words split at whitespace (as Python's str.split(), which also splits at U+2028/U+2029);
 *  4. per word: lower case (BasicTokenizer's own str.lower() then changes nothing), NFD,
 *     nonspacing marks (Mn) removed;
 *  5. punctuation (category P* and ASCII 33-47, 58-64, 91-96, 123-126) split into one-character
 *     tokens;
 *  6. WordPiece: greedy longest match from the left, continuation pieces prefixed "##"; a token
 *     of more than 100 code points, or one that cannot be covered, becomes [UNK];
 *  7. [CLS] ... [SEP]; truncation keeps the first max_len - 2 pieces.
 * The Unicode tables (lib/unicode-tables.c) come from Python's unicodedata (wp_unicode_version).
 * Not reproduced: newer transformers releases NFC-normalise the text before step 3; since NFD
 * follows, that changes nothing except for sequences whose lower case differs between composed
 * and decomposed forms (none in the Unicode tables we generate from; see docs/text-encode.md).
 */
#ifndef CT_WORDPIECE_H
#define CT_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#define WP_MAX_WORD_CHARS 100    /* BertTokenizer max_input_chars_per_word */

struct wp_vocab;

/* vocab.txt: one token per line (\n, \r\n or \r), line k (from 0) = id k; a token listed twice
 * keeps its last id, as transformers' load_vocab.  Must be valid UTF-8 without NUL bytes and
 * contain [UNK], [CLS] and [SEP].  NULL + lasterr ("FILE: problem"). */
struct wp_vocab *wp_vocab_load(const char *path);
/* The same from memory; name is used in messages. */
struct wp_vocab *wp_vocab_parse(const char *text, size_t n, const char *name);
void wp_vocab_free(struct wp_vocab *v);

int         wp_vocab_size(const struct wp_vocab *v);            /* lines read = ids 0 .. size-1 */
int         wp_vocab_id(const struct wp_vocab *v, const char *token);   /* -1 when absent */
const char *wp_vocab_token(const struct wp_vocab *v, int id);  /* NULL when out of range */
const char *wp_unicode_version_str(void);                      /* "14.0.0" */

/* Tokenise n bytes of UTF-8 text: ids[0] = [CLS], ..., ids[k-1] = [SEP], k <= max_len (>= 2).
 * Returns k, and *n_full = the length without truncation (k < *n_full: truncated), or -1 +
 * lasterr on invalid UTF-8. */
int wp_encode(const struct wp_vocab *v, const char *text, size_t n, int32_t *ids, int max_len, int *n_full);

#endif
