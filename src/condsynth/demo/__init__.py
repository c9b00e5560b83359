"""``condsynth demo``: the bundled models in a local web page (the optional 'demo' extra, Gradio).

:mod:`condsynth.demo.runner` is what each tab does, usable without a browser; :mod:`condsynth.demo.app` the page.
"""

from condsynth.demo.runner import DemoRunner

__all__ = ["DemoRunner"]
