# Preprocess a dataset with make: one ct.tokens/1 file per case, in parallel, resumable.
#
#   make -f pipelines/dataset.mk -j 8 CT_DIR=data/ct SEG_DIR=data/seg WEIGHTS=visd-encoder.ctv OUT=out
#
# CT_DIR/<id>.nii.gz is a CT, SEG_DIR/<id>.nii.gz its TotalSegmentator label map (same name).
# Each case runs  ct-resample | mask-pool | encode  in one pipe: no intermediate files, a failing
# stage fails the target (pipefail) and make deletes the partial output (.DELETE_ON_ERROR).
# Re-running skips the cases already done; `make -k` goes on past bad cases.
#
# On a cluster, give every node one shard of the cases: SHARD=i/N keeps the cases whose index
# (in sorted order) is i mod N, e.g. in a job array:  make -f pipelines/dataset.mk SHARD=$TASK/16 ...
#
#   make -f pipelines/dataset.mk ... out/<id>.windows.ctv    one case up to mask-pool, to debug it
#   make -f pipelines/dataset.mk ... list                   the cases this shard would run

CT_DIR   ?= ct
SEG_DIR  ?= seg
OUT      ?= out
WEIGHTS  ?= weights.ctv
THREADS  ?= 1
SHARD    ?=
RESAMPLE_FLAGS ?=
MASKPOOL_FLAGS ?=
ENCODE_FLAGS   ?=

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:

ALL_CASES := $(sort $(patsubst $(CT_DIR)/%.nii.gz,%,$(wildcard $(CT_DIR)/*.nii.gz)))
ifneq ($(SHARD),)
SHARD_I := $(word 1,$(subst /, ,$(SHARD)))
SHARD_N := $(word 2,$(subst /, ,$(SHARD)))
CASES := $(shell echo $(ALL_CASES) | tr ' ' '\n' | awk 'NF && (NR - 1) % $(SHARD_N) == $(SHARD_I)')
else
CASES := $(ALL_CASES)
endif

.PHONY: all list
all: $(CASES:%=$(OUT)/%.tokens.ctv)

list:
	@printf '%s\n' $(CASES)

$(OUT):
	mkdir -p $@

$(OUT)/%.tokens.ctv: $(CT_DIR)/%.nii.gz $(SEG_DIR)/%.nii.gz $(WEIGHTS) | $(OUT)
	ct-resample $< --label $(word 2,$^) --id $* $(RESAMPLE_FLAGS) \
	  | mask-pool $(MASKPOOL_FLAGS) \
	  | encode -w $(WEIGHTS) -j $(THREADS) $(ENCODE_FLAGS) -o $@

$(OUT)/%.windows.ctv: $(CT_DIR)/%.nii.gz $(SEG_DIR)/%.nii.gz | $(OUT)
	ct-resample $< --label $(word 2,$^) --id $* $(RESAMPLE_FLAGS) | mask-pool $(MASKPOOL_FLAGS) -o $@
