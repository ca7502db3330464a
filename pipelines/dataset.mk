# A dataset with make: per-case results in parallel, resumable, then the merged result.
#
#   make -f pipelines/dataset.mk -j 8 CT_DIR=data/valid SEG_DIR=data/masks/valid WEIGHTS=visd.ctv OUT=out
#   make -f pipelines/dataset.mk -j 8 MANIFEST=cases.tsv WEIGHTS=visd.ctv OUT=out
#
# The cases are the lines of a manifest (ID, CT, SEG; pipelines/manifest.sh), made from CT_DIR and
# SEG_DIR (CT-RATE's tree or flat: SEG_DIR/<same relative path>) into OUT/manifest.tsv unless MANIFEST
# is given; Slurm (pipelines/slurm/) and GNU parallel (pipelines/parallel.sh) read the same file.
# What is computed lives in pipelines/stages.sh; pipelines/case.sh runs one case:
#   OUT/once/.done        the once-per-run step (checks the weights; the prompt features
#                         OUT/once/prompts.ctv, text-encode)
#   OUT/cases/ID.ctv      one result per case, its ct.probs/1 record (its presence = done; redone
#                         when CT, SEG or the once step are newer); OUT/rows/ID.csv its CSV row
#   OUT/keep/ID.organ.ctv its organ features and anomaly maps (ct.organ/1; KEEP, below)
#   OUT/log/ID.log        the stages' stderr;  OUT/status/ID.ok|.failed  the markers
#   OUT/summary.tsv, OUT/probs.ctv (all ct.probs/1 records), OUT/probs.csv (the released CSV),
#   and with LABELS=the label CSV: OUT/metrics.txt (.csv, .json) and OUT/roc.svg
# A failing case is reported on stderr, leaves no result and does not stop the others (no -k
# needed); the final step lists it and make exits non-zero.  Re-running redoes only the cases
# without a result (the failed ones and those an interruption cut).  Each finished case prints
#   case7 ok 3.1 s | 12/40 done, 1 failed | 2.4 cases/min | ETA 11m
#
#   make ... list                     the cases (of this shard)
#   make ... SHARD=i/N                only the cases of shard i of N (lines i, i+N, ...), no merge
#   make ... summary                  only the final step, on the results there are
#   make ... KEEP="organ tokens"      the streams kept in OUT/keep/ID.NAME.ctv (default organ;
#                                     also case, windows; KEEP= keeps none)
#   make ... THREADS=2                -j of each case's compute stages (default 1 per case)

CT_DIR   ?= ct
SEG_DIR  ?= seg
OUT      ?= out
WEIGHTS  ?= weights.ctv
THREADS  ?= 1
SHARD    ?=
MANIFEST ?=
KEEP     ?= organ
LABELS   ?=
RESAMPLE_FLAGS ?=
MASKPOOL_FLAGS ?=
ENCODE_FLAGS   ?=
VQ_FLAGS       ?=
ZEROSHOT_FLAGS ?=
METRICS_FLAGS  ?=
export OUT WEIGHTS THREADS KEEP LABELS RESAMPLE_FLAGS MASKPOOL_FLAGS ENCODE_FLAGS VQ_FLAGS ZEROSHOT_FLAGS METRICS_FLAGS

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.SUFFIXES:
PIPE := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
RESULT_EXT := $(shell sed -n 's/^RESULT_EXT=//p' $(PIPE)/stages.sh)

# The manifest from the directories, rewritten only when it changes (so cases.mk is stable).
ifeq ($(MANIFEST),)
MANIFEST := $(OUT)/manifest.tsv
MANIFEST_ERR := $(shell mkdir -p $(OUT) && $(PIPE)/manifest.sh $(CT_DIR) $(SEG_DIR) >$(OUT)/.manifest.new 2>$(OUT)/.manifest.err \
    && { cmp -s $(OUT)/.manifest.new $(MANIFEST) && rm -f $(OUT)/.manifest.new || mv $(OUT)/.manifest.new $(MANIFEST); } \
    || { rm -f $(OUT)/.manifest.new; echo failed; })
ifneq ($(MANIFEST_ERR),)
$(error $(shell head -1 $(OUT)/.manifest.err))
endif
endif

ifneq ($(SHARD),)
LINES = $(PIPE)/manifest.sh --shard $(SHARD) $(MANIFEST)
else
LINES = cat $(MANIFEST)
endif

.PHONY: all cases merge summary list begin
all: merge

CASE := $(PIPE)/case.sh
ONCE := $(OUT)/once/.done

# One explicit rule per case of the manifest (this shard), generated from it.
CASES_MK := $(OUT)/cases$(if $(SHARD),.$(subst /,-of-,$(SHARD))).mk
include $(CASES_MK)
$(CASES_MK): $(MANIFEST) $(PIPE)/dataset.mk
	@mkdir -p $(OUT)
	@$(LINES) | awk -F '\t' -v out='$$(OUT)' -v ext=$(RESULT_EXT) ' \
	    NF >= 3 { printf "CASES += %s\n%s/cases/%s.%s: %s %s $$(ONCE) | begin\n\t@$$(CASE) %s %s %s || :\n", \
	              $$1, out, $$1, ext, $$2, $$3, $$1, $$2, $$3 }' >$@.tmp && mv $@.tmp $@

RESULTS = $(CASES:%=$(OUT)/cases/%.$(RESULT_EXT))
# case.sh writes them atomically: make must not delete one that is complete when interrupted
.PRECIOUS: $(RESULTS)

cases: $(RESULTS)

ifeq ($(SHARD),)
merge: $(RESULTS)
	@$(PIPE)/merge.sh $(MANIFEST)
else
merge: $(RESULTS)
endif

summary:
	@$(PIPE)/merge.sh $(MANIFEST)

list:
	@printf '%s\n' $(CASES)

# the progress clock of this run (order-only: it never makes a case out of date)
begin:
	@$(CASE) --begin $(MANIFEST)

$(ONCE): $(WEIGHTS)
	@$(CASE) --once
