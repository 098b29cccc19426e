"""``rnngen serve``: a local page for interactive editing and repair of images with a trained model.

Draw (white, grey) or erase (black) pixels on the canvas, paint in red the region to regenerate,
pick the class, temperature and seed: the model completes the image at once, keeping every pixel
that is not red, and the page shows how long the fused sampler took beside the plain per-step
PyTorch loop (the reference backend) for the same completion.

The page is built with Gradio (``pip install "rnngen[serve]"``), imported only by this command.
The canvas shows each image pixel as a square of ``scale`` screen pixels; what comes back is
read as the median colour of each square, quantised to the model's levels, so a stroke counts for
a pixel where it covers most of its square.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import torch

# The colours of the canvas: the ink ramp the model's levels map to, and the regenerate marker.
INK, ERASE, REGENERATE = "#ffffff", "#000000", "#ff0000"
CANVAS_SIDE = 256  # about this many screen pixels a side, whatever the image size
MAX_CANVAS_SIDE = 4096  # a composite larger than this is refused before it is decoded further
MAX_REQUEST_BYTES = "2mb"  # Gradio's upload cap: a canvas of this size is a few hundred kB


class PageError(ValueError):
    """Bad input from the page: shown there as a message, never a traceback."""


def scale_for(image_size: tuple[int, int]) -> int:
    """Screen pixels per image pixel, so the canvas is about CANVAS_SIDE a side."""
    return max(1, CANVAS_SIDE // max(image_size))


def to_canvas(values: torch.Tensor, levels: int, scale: int, regenerate: torch.Tensor | None = None) -> np.ndarray:
    """An RGB uint8 canvas [H*scale, W*scale, 3] of a [C, H, W] or [H, W] image of levels, with
    the ``regenerate`` pixels (bool [H, W]) painted in the marker's red."""
    values = values.detach().cpu()
    if values.dim() == 3:
        values = values[0] if values.shape[0] == 1 else values.permute(1, 2, 0)
    grey = (values.float() * 255 / (levels - 1)).round().clamp(0, 255).to(torch.uint8).numpy()
    rgb = np.repeat(grey[..., None], 3, axis=2) if grey.ndim == 2 else grey
    if regenerate is not None:
        rgb = rgb.copy()
        rgb[regenerate.cpu().numpy()] = (255, 0, 0)
    return np.ascontiguousarray(np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)))


def from_canvas(canvas: np.ndarray, image_size: tuple[int, int], levels: int,
                channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The image the user drew: (values LongTensor [C, H, W], regenerate bool [H, W]).

    ``canvas``: uint8 [h, w, 3 or 4] whose sides are multiples of the image's (any scale). A
    pixel is to regenerate where most of its square is the marker's red; its value is the median
    grey (or colour) of its square, quantised to ``levels``."""
    if not isinstance(canvas, np.ndarray) or canvas.ndim != 3 or canvas.shape[2] not in (3, 4):
        raise PageError(f"the canvas must be an RGB image, got {getattr(canvas, 'shape', type(canvas).__name__)}")
    h, w = canvas.shape[:2]
    if max(h, w) > MAX_CANVAS_SIDE:
        raise PageError(f"the canvas is {w}x{h}; at most {MAX_CANVAS_SIDE} pixels a side")
    height, width = image_size
    if h % height or w % width or h // height != w // width:
        raise PageError(f"the canvas is {w}x{h}; this model's images are {width}x{height}, so it must be a "
                        f"whole multiple of that (the page's own canvas is; was a different image uploaded?)")
    s = h // height
    rgb = canvas[..., :3].astype(np.float32).reshape(height, s, width, s, 3)
    red = (rgb[..., 0] > 160) & (rgb[..., 1] < 96) & (rgb[..., 2] < 96)
    regenerate = red.mean(axis=(1, 3)) > 0.5
    # The median of each square: what covers most of it (a stroke's soft edge does not count).
    colour = np.median(rgb.transpose(0, 2, 4, 1, 3).reshape(height, width, 3, s * s), axis=3)  # [H, W, 3]
    planes = colour.mean(axis=2, keepdims=True) if channels == 1 else colour
    values = np.rint(planes / 255 * (levels - 1)).clip(0, levels - 1).astype(np.int64)
    values[regenerate] = 0
    return torch.from_numpy(values).permute(2, 0, 1).contiguous(), torch.from_numpy(regenerate)


def repair(model, values: torch.Tensor, regenerate: torch.Tensor, label: int | None, temperature: float,
           seed: int, backend: str | None = None) -> tuple[torch.Tensor, float]:
    """Complete one image: keep the pixels not marked, sample the marked ones. Returns the image
    [C, H, W] and the seconds the completion took."""
    labels = None if model.num_classes is None else torch.tensor([label])
    start = time.perf_counter()
    with torch.inference_mode():
        image = model.complete(values[None], ~regenerate, labels=labels, temperature=temperature, seed=seed,
                               backend=backend)
    return image[0], time.perf_counter() - start


def _check_choices(model, label, temperature, seed) -> tuple[int | None, float, int]:
    """The page's other inputs, checked (a request may come from anything, not only the page)."""
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise PageError(f"temperature must be a number, got {temperature!r}") from None
    if not (0.05 <= temperature <= 5.0):
        raise PageError(f"temperature must be in 0.05..5, got {temperature}")
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise PageError(f"seed must be a whole number in 0..2**63-1, got {seed!r}")
    if model.num_classes is None:
        return None, temperature, seed
    try:
        label = int(label)
    except (TypeError, ValueError):
        raise PageError(f"class must be one of 0..{model.num_classes - 1}, got {label!r}") from None
    if not 0 <= label < model.num_classes:
        raise PageError(f"class must be one of 0..{model.num_classes - 1}, got {label}")
    return label, temperature, seed


class Repairer:
    """What the page calls: canvas in, completion and timings out. Separate from the Gradio
    wiring so it is tested without a browser."""

    def __init__(self, model, backend: str = "auto", examples=None):
        from .dispatch import resolve

        self.model = model
        self.scale = scale_for(model.image_size)
        device = next(model.parameters()).device
        self.fused = resolve(backend, device, "sample", torch.float32)
        self.examples = examples  # (images [N, C, H, W], labels [N] or None) or None
        canvas, label = self.example(0)
        self(canvas, label, 1.0, 0)  # warm-up, so the first timing shown is not a cold start's

    def example(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas of test image ``index`` (a blank one without data) with its bottom half marked."""
        height, width = self.model.image_size
        regenerate = torch.zeros(height, width, dtype=torch.bool)
        regenerate[height // 2:] = True
        if self.examples is None:
            image = torch.zeros(self.model.channels, height, width, dtype=torch.long)
            return to_canvas(image, self.model.levels, self.scale, regenerate), 0
        images, labels = self.examples
        i = int(index) % len(images)
        label = 0 if labels is None else int(labels[i])
        return to_canvas(images[i], self.model.levels, self.scale, regenerate), label

    def __call__(self, canvas, label, temperature, seed) -> tuple[np.ndarray, str]:
        label, temperature, seed = _check_choices(self.model, label, temperature, seed)
        values, regenerate = from_canvas(canvas, self.model.image_size, self.model.levels, self.model.channels)
        image, fused = repair(self.model, values, regenerate, label, temperature, seed, self.fused)
        _, loop = repair(self.model, values, regenerate, label, temperature, seed, "reference")
        marked = int(regenerate.sum())
        report = (f"{marked} of {regenerate.numel()} pixels regenerated. Fused sampler ({self.fused}): "
                  f"**{fused * 1e3:.1f} ms**; plain PyTorch loop (reference backend): {loop * 1e3:.1f} ms "
                  f"({loop / fused:.1f}x).")
        return to_canvas(image, self.model.levels, self.scale), report


def _load_examples(payload):
    """The test split of the checkpoint's data, if it can be read here (else None: a blank canvas)."""
    from .data import load_from_spec

    try:
        data = load_from_spec(dict(payload.get("data") or {"spec": "digits"})).test
    except (OSError, ValueError):
        return None
    return data.images.long(), data.labels


def build_app(model, payload: dict, backend: str = "auto", examples=None):
    """The Gradio page for ``model`` (a PixelGRU in eval mode)."""
    gr = _gradio()

    if not hasattr(model, "complete"):
        raise ValueError(f"a {payload.get('model')} cannot complete images (it has no pixel likelihood); "
                         "serve a PixelGRU checkpoint")
    repairer = Repairer(model, backend, examples if examples is not None else _load_examples(payload))
    height, width = model.image_size
    side = (width * repairer.scale, height * repairer.scale)
    first, first_label = repairer.example(0)

    def complete(editor, label, temperature, seed):
        canvas = None if editor is None else editor.get("composite")
        if canvas is None:
            raise gr.Error("draw on the canvas first", print_exception=False)
        try:
            return repairer(canvas, label, temperature, seed)
        except (PageError, ValueError, TypeError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def new_example(index):
        canvas, label = repairer.example(index + 1)
        editor = {"background": canvas, "layers": [], "composite": canvas}
        return editor, (label if model.num_classes is not None else None), index + 1

    classes = [] if model.num_classes is None else list(range(model.num_classes))
    with gr.Blocks(title="rnngen: edit and repair") as app:
        gr.Markdown(f"## rnngen: edit and repair {width}x{height} images with a {payload.get('model')}\n"
                    "Paint **white** (or grey) to draw, **black** to erase, **red** over the region to "
                    "regenerate. Everything not red is kept; the red pixels are sampled, each conditioned "
                    "on the pixels before it in raster order.")
        index = gr.State(0)
        with gr.Row():
            editor = gr.ImageEditor(
                value={"background": first, "layers": [], "composite": first}, image_mode="RGB", type="numpy",
                sources=(), transforms=(), layers=False, canvas_size=side, fixed_canvas=True,
                brush=gr.Brush(colors=[INK, "#808080", ERASE, REGENERATE], default_color=INK,
                               default_size=max(1, repairer.scale // 2), color_mode="fixed"),
                eraser=gr.Eraser(default_size=repairer.scale), label="canvas", elem_id="canvas",
                buttons=[])
            result = gr.Image(label="completion", type="numpy", image_mode="RGB", format="png",
                              interactive=False, elem_id="completion", buttons=["download"],
                              height=side[1] + 40)
        with gr.Row():
            label = gr.Dropdown(classes, value=first_label if classes else None, label="class",
                                visible=bool(classes), elem_id="class")
            temperature = gr.Slider(0.05, 5.0, value=1.0, step=0.05, label="temperature", elem_id="temperature")
            seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
        with gr.Row():
            run = gr.Button("Complete", variant="primary", elem_id="complete")
            another = gr.Button("Another test image", elem_id="another")
        timing = gr.Markdown(elem_id="timing")
        inputs = [editor, label, temperature, seed]
        run.click(complete, inputs, [result, timing], trigger_mode="always_last")
        for event in (editor.apply, editor.input, label.change, temperature.change, seed.change):
            event(complete, inputs, [result, timing], trigger_mode="always_last", show_progress="hidden")
        another.click(new_example, [index], [editor, label, index]).then(complete, inputs, [result, timing])
        app.load(complete, inputs, [result, timing])
    return app


def serve(checkpoint: str | None = None, host: str = "127.0.0.1", port: int | None = None, backend: str = "auto",
          block: bool = True):
    """Load ``checkpoint`` (default: the bundled digits model) and serve the page. With
    ``block=False`` returns (app, url) with the server running in a thread (``app.close()`` stops it)."""
    from .models import load_model

    if checkpoint is None:
        from importlib import resources

        checkpoint = str(resources.files("rnngen").joinpath("pretrained", "digits.pt"))
    model, payload = load_model(checkpoint, backend=backend)
    app = build_app(model, payload, backend)
    app.queue(default_concurrency_limit=1, max_size=16)  # one completion at a time; the kernels use every core
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, show_error=True,
                           max_file_size=MAX_REQUEST_BYTES, quiet=not block, footer_links=[],
                           theme=_theme(), ssr_mode=False, enable_monitoring=False)
    if not block:
        return app, url
    print(f"rnngen serve: {checkpoint} on {url} (Ctrl+C stops it)", flush=True)
    # Ctrl+C stops it even when started from something that ignores SIGINT (a background job of a
    # non-interactive shell, nohup): Python then keeps SIGINT ignored instead of raising KeyboardInterrupt.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app.block_thread()
    finally:
        app.close()
    return app, url


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local page sends nothing anywhere
    try:
        import gradio
    except ImportError:
        raise ImportError('rnngen serve needs Gradio: pip install "rnngen[serve]"') from None
    return gradio


def _theme():
    gr = _gradio()

    # The default theme loads fonts from Google; a local page should need no network.
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
