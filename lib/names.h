/*
 * names.h - the names streams are made of: schema names, tensor names (and
 * the formats of per-stage, per-organ tensor names) and the meta keys that a
 * stage other than the writer reads.  Spell them here, once; the record types
 * themselves are documented in schemas/<name>.v<N>.yaml.
 *
 *     rec_init(&w, a, NM_WINDOW, id);                          // "ct.window/1"
 *     if (rec_expect(r, NM_CASE_NAME, NM_CASE_MAJOR) != 0) ...  // "ct.case", 1
 *     snprintf(name, sizeof name, NM_T_TOK, stage, organ);      // "tok1/lung"
 *     int n = rec_meta_strv(r, NM_M_ORGANS, names, max);
 *
 * Rule: a meta key read by another tool (or by the Python side as an
 * interface) is here; a key written once for provenance and only shown to
 * people (crop_lo, size_rule, ...) stays a literal at its one writer.  A new
 * record type adds its schema triple and the names its consumers read.
 * Macros only: no code, no state.
 */
#ifndef CT_NAMES_H
#define CT_NAMES_H

/* ---- schemas: the full string records carry, and the name/major rec_expect takes ---- */
#define NM_IMAGE          "ct.image/1"       /* ct-import */
#define NM_IMAGE_NAME     "ct.image"
#define NM_IMAGE_MAJOR    1
#define NM_CASE           "ct.case/1"        /* ct-resample */
#define NM_CASE_NAME      "ct.case"
#define NM_CASE_MAJOR     1
#define NM_WINDOW         "ct.window/1"      /* mask-pool */
#define NM_WINDOW_NAME    "ct.window"
#define NM_WINDOW_MAJOR   1
#define NM_TOKENS         "ct.tokens/1"      /* encode */
#define NM_TOKENS_NAME    "ct.tokens"
#define NM_TOKENS_MAJOR   1
#define NM_WEIGHTS        "ct.weights/1"     /* tools/ctvis-convert.py */
#define NM_WEIGHTS_NAME   "ct.weights"
#define NM_WEIGHTS_MAJOR  1
#define NM_REPORT         "ct.report/1"      /* report-label */
#define NM_REPORT_NAME    "ct.report"
#define NM_REPORT_MAJOR   1
#define NM_LABELS         "ct.labels/1"      /* report-label --labels */
#define NM_LABELS_NAME    "ct.labels"
#define NM_LABELS_MAJOR   1
#define NM_ORGAN          "ct.organ/1"       /* vq-recon (notes/new-records.md) */
#define NM_ORGAN_NAME     "ct.organ"
#define NM_ORGAN_MAJOR    1
#define NM_PROMPTS        "ct.prompts/1"     /* text-encode */
#define NM_PROMPTS_NAME   "ct.prompts"
#define NM_PROMPTS_MAJOR  1
#define NM_PROBS          "ct.probs/1"       /* zeroshot */
#define NM_PROBS_NAME     "ct.probs"
#define NM_PROBS_MAJOR    1

/* ---- tensor names; formats take (stage 1..4, organ) or (stage) ---- */
#define NM_T_IMAGE        "image"            /* ct.image, ct.case, ct.window: f32 [D,H,W] */
#define NM_T_MASK         "mask"             /* ct.case, ct.window: u8 [D,H,W] */
#define NM_T_LABEL        "label"            /* ct.image: the label map */
#define NM_T_TOK          "tok%d/%s"         /* ct.window, ct.tokens: i32 [N_s] token indices */
#define NM_T_BITS         "bits%d/%s"        /* ct.window --bits: packed token flags */
#define NM_T_EMB          "emb%d/%s"         /* ct.tokens: f32 [N_s, 256] */
#define NM_T_MAP          "map%d"            /* ct.tokens --maps: the stage's feature map */
#define NM_T_FEATURE      "feature"          /* ct.organ: f32 [256] */
#define NM_T_ERR4         "err4"
#define NM_T_CODE4        "code4"
#define NM_T_TOK4         "tok4"
#define NM_T_ANOMALY      "anomaly"
#define NM_T_RECON4       "recon4"
#define NM_T_TEXT_FEAT    "text_feat"        /* ct.prompts: f32 [n_items, 2, 256] */
#define NM_T_P_POS        "p_pos"            /* ct.probs: f64 [n_items] */
#define NM_T_N_WINDOWS    "n_windows"        /* ct.probs: i32 [n_items] */

/* ---- meta keys read across stages ---- */
/* geometry (ct.image, ct.case, ct.window, ct.organ) */
#define NM_M_AFFINE            "affine"             /* 4x4: C-order voxel index -> world mm */
#define NM_M_CASE_AFFINE       "case_affine"
#define NM_M_SPACING_MM        "spacing_mm"
#define NM_M_SOURCE            "source"             /* input file (and line) a record came from */
#define NM_M_HISTORY           "history"            /* rec_history_append */
/* organs (ct.case, ct.window, ct.tokens, ct.organ) */
#define NM_M_ORGANS            "organs"             /* organ names, mask value k+1 = organs[k] */
#define NM_M_ORGAN_VOXELS      "organ_voxels"
#define NM_M_ORGAN             "organ"              /* the window's centre organ */
#define NM_M_ORGAN_INDEX       "organ_index"
#define NM_M_WINDOW_ORGANS     "window_organs"      /* organs with tokens in the window */
#define NM_M_WINDOW_ORGAN      "window_organ"       /* ct.organ: the organ the window was cut for */
#define NM_M_WINDOW_OFFSET     "window_offset"
#define NM_M_WINDOW_SIZE       "window_size"
#define NM_M_CASE_SHAPE        "case_shape"
#define NM_M_MODE              "mode"               /* "single" | "multi" */
#define NM_M_TOKEN_GRIDS       "token_grids"
#define NM_M_STAGE_GRIDS       "stage_grids"
/* weights (ct.weights and whatever a model wrote) */
#define NM_M_SHA256            "sha256"
#define NM_M_UNTRAINED         "untrained"
#define NM_M_WEIGHTS_ID        "weights_id"
#define NM_M_WEIGHTS_SHA256    "weights_sha256"
#define NM_M_WEIGHTS_UNTRAINED "weights_untrained"
/* reports and labels (ct.report, ct.labels) */
#define NM_M_TEXTS             "texts"
#define NM_M_ABNORMAL          "abnormal"
#define NM_M_NORMALISED        "normalised"
#define NM_M_WARNINGS          "warnings"
#define NM_M_VOLUME_NAME       "volume_name"
#define NM_M_SCAN_ID           "scan_id"
#define NM_M_ABNORMALITIES     "abnormalities"
#define NM_M_LABELS            "labels"
#define NM_M_ITEMS             "items"              /* ct.labels, ct.prompts, ct.probs */
/* scores (ct.organ, ct.prompts, ct.probs) */
#define NM_M_EMPTY             "empty"
#define NM_M_EMPTY_REASON      "empty_reason"
#define NM_M_TEMP              "temp"
#define NM_M_COLUMNS           "columns"
#define NM_M_FILE_NAME         "file_name"

#endif
