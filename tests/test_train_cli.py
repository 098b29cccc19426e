"""Training, checkpoints and the image commands: train / resume / sample / complete / eval / demo,
and what happens with bad, truncated or hostile files."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnngen.cli import _train_device, main, pretrained_path
from rnngen.data import load_dataset
from rnngen.models import PixelGRU, load_model
from rnngen.training import CheckpointError, TrainSettings, load_checkpoint, save_checkpoint, train

TINY = ["--hidden", "16", "--batch-size", "16", "--ema", "0", "--no-progress"]


def _run(*args):
    """The command in a fresh process: exit status, stdout, stderr."""
    done = subprocess.run([sys.executable, "-m", "rnngen", *args], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_train_writes_checkpoint_and_metrics_and_the_loss_falls(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "60", "--eval-every", "30", *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("world_size", "train_loss_first", "train_loss_last", "test_bits_per_dim"):
        assert key in metrics
    assert metrics["world_size"] == 1 and metrics["steps"] == 60 and len(metrics["history"]) == 2
    assert metrics["train_loss_last"] < metrics["train_loss_first"] - 0.2
    assert metrics["test_bits_per_dim"] < 4.09  # below the uniform model's log2(17)
    model, payload = load_model(str(out / "checkpoint.pt"))
    assert payload["step"] == 60 and isinstance(model, PixelGRU) and model.num_classes == 10
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "model.pt"]  # no temp files
    assert "test bits/dim" in capsys.readouterr().out


def test_above_is_trained_saved_and_sampled(tmp_path, capsys):
    """--above: the model reads the row above; its checkpoint rebuilds it, and `rnngen sample`
    draws from it through the fused sampler's lagged inputs."""
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "4", "--eval-every", "0",
                 "--above", "2", "--above-rows", "2", *TINY]) == 0
    model, _ = load_model(str(out / "model.pt"))
    assert model.above == 2 and model.above_rows == 2 and model.above_gates.shape == (10, 1, 17, 48)
    assert model.lags == (6, 7, 8, 9, 10, 14, 15, 16, 17, 18)
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png"), "--n", "10"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    # over the image width: an error naming the option, nothing written
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "bad"), "--steps", "1", "--above", "8",
                 *TINY]) == 2
    assert "above must be below the image width 8" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_above_rank_is_trained_saved_and_sampled(tmp_path, capsys):
    """--above-rank: the neighbours' tables are factored; the checkpoint's config rebuilds the
    factors, `rnngen sample` draws through their product; a model without neighbours, or one
    that has none to factor, is refused by the option's name before anything is written."""
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--eval-every", "0",
                 "--above", "1", "--above-rank", "3", *TINY]) == 0
    model, payload = load_model(str(out / "model.pt"))
    assert model.above_rank == 3 and payload["config"]["above_rank"] == 3
    assert model.above_projection.shape == (3, 1, 3, 48) and not hasattr(model, "above_gates")
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png"), "--n", "4"]) == 0
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "bad"), "--above-rank", "3", *TINY]) == 2
    assert "above_rank factors the tables of the pixels above: it needs above >= 1" in capsys.readouterr().err
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "gan"), "--model", "generator-gan",
                 "--augment", "none", "--above-rank", "3", *TINY]) == 2
    assert "--above-rank are options of --model pixelgru only" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "gan").exists()


def test_positions_are_trained_saved_sampled_and_completed(tmp_path, capsys):
    """--positions: a row per column, kept in the checkpoint's config; sampling and completion
    draw through the per-column tables; other models refuse the option by name."""
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--eval-every", "0",
                 "--positions", "--above", "1", *TINY]) == 0
    model, payload = load_model(str(out / "model.pt"))
    assert model.positions and payload["config"]["positions"]
    assert model.position_gates.shape == (8, 48) and model.position_logits.shape == (8, 17)
    assert model.position_gates.abs().sum() > 0  # trained away from its zero start
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png"), "--n", "4"]) == 0
    assert main(["complete", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "c.png"),
                 "--n", "2"]) == 0
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "gan"), "--model", "generator-gan",
                 "--augment", "none", "--positions", *TINY]) == 2
    assert "--positions is an option of --model pixelgru only" in capsys.readouterr().err
    assert not (tmp_path / "gan").exists()


@pytest.mark.parametrize("ema,augment", [(0.0, "none"), (0.9, "none"), (0.0, "dihedral")])
def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, ema, augment):
    data = load_dataset("digits")
    meta = {"model": "PixelGRU", "data": {"spec": "digits"}}

    def fresh():
        torch.manual_seed(0)
        return PixelGRU(8, levels=17, hidden_size=16, num_classes=10, dropout=0.2, backend="reference",
                        augmentations=8 if augment == "dihedral" else 0)

    settings = TrainSettings(steps=12, batch_size=8, shift=1, eval_every=0, checkpoint_every=5, ema=ema,
                             augment=augment)
    whole = fresh()
    train(whole, data, str(tmp_path / "a"), settings, meta=meta, progress=False)
    # "Killed" after step 10: keep the checkpoint of step 10, start a new process' model from scratch.
    part = fresh()
    train(part, data, str(tmp_path / "b"), TrainSettings(**{**settings.__dict__, "steps": 10}), meta=meta,
          progress=False)
    resumed = fresh()
    train(resumed, data, str(tmp_path / "b"), settings, meta=meta, resume=True, progress=False)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    saved = load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"))
    reference = load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"))
    # The same metrics, but for the evaluation the shorter run made at its own end (step 10).
    saved["metrics"]["history"] = [h for h in saved["metrics"]["history"] if h["step"] != 10]
    assert saved["metrics"] == reference["metrics"] and saved["step"] == reference["step"] == 12
    for a, b in zip(saved["optimizer"]["state"].values(), reference["optimizer"]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Nothing more to do at its step count; and a finished run is never silently replaced.
    with pytest.raises(CheckpointError, match="already at step 12"):
        train(fresh(), data, str(tmp_path / "b"), settings, meta=meta, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        train(fresh(), data, str(tmp_path / "b"), settings, meta=meta, progress=False)
    assert ("raw_state" in saved) == bool(ema)  # with EMA: the average to sample, the raw weights to resume


def test_sample_complete_eval_commands(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "5", *TINY]) == 0
    png, npz = tmp_path / "s.png", tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(png), "--n", "20",
                 "--labels", "3,7", "--save-array", str(npz), "--seed", "4"]) == 0
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] > 10 * 64 and image.size[1] > 2 * 64  # two rows of 10 upscaled digits
    arrays = np.load(npz)
    assert arrays["images"].shape == (20, 8, 8) and arrays["labels"].tolist() == [3] * 10 + [7] * 10
    assert 0 <= arrays["images"].min() and arrays["images"].max() <= 16
    # Same seed, same images.
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(png), "--n", "20",
                 "--labels", "3,7", "--save-array", str(tmp_path / "t.npz"), "--seed", "4"]) == 0
    assert np.array_equal(np.load(tmp_path / "t.npz")["images"], arrays["images"])

    assert main(["complete", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "c.png"),
                 "--n", "3", "--samples", "2", "--save-array", str(tmp_path / "c.npz")]) == 0
    completed = np.load(tmp_path / "c.npz")
    assert completed["images"].shape == (6, 8, 8)
    originals = np.repeat(completed["originals"][:, 0], 2, axis=0)
    assert np.array_equal(completed["images"][:, :4], originals[:, :4])   # the given top half is kept
    assert main(["eval", "--checkpoint", str(out / "model.pt")]) == 0


def test_bundled_model_samples_at_once(tmp_path):
    assert os.path.isfile(pretrained_path())
    code, stdout, stderr = _run("sample", "--out", str(tmp_path / "x.png"), "--n", "10")
    assert code == 0, stderr
    assert (tmp_path / "x.png").stat().st_size > 0


def _expect_one_line_error(args, match):
    code, stdout, stderr = _run(*args)
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert match in stderr, stderr


def test_distribution_augmentation_option(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--augment", "dihedral",
                 "--p-identity", "0.25", *TINY]) == 0
    model, _ = load_model(str(out / "model.pt"))
    settings = load_checkpoint(str(out / "checkpoint.pt"))["train"]
    assert model.augmentations == 8 and settings["augment"] == "dihedral" and settings["p_identity"] == 0.25
    assert model.mixture == "dihedral"  # the default: the mixture over the eight orderings
    assert main(["eval", "--checkpoint", str(out / "model.pt")]) == 0
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "plain"), "--steps", "1", "--augment", "flips",
                 "--no-mixture", *TINY]) == 0
    plain, _ = load_model(str(tmp_path / "plain" / "model.pt"))
    assert plain.augmentations == 4 and plain.mixture == "none"
    _expect_one_line_error(["train", "--out", str(tmp_path / "a"), "--augment", "dihedral", "--model", "seed-vae"],
                           "--augment")
    _expect_one_line_error(["train", "--out", str(tmp_path / "b"), "--augment", "flips", "--p-identity", "2"],
                           "p_identity")
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="conditioned on 8 augmentations"):  # a model not told the transform
        train(PixelGRU(8, levels=17, hidden_size=4, num_classes=10), data, str(tmp_path / "c"),
              TrainSettings(steps=1, augment="dihedral"), meta={"model": "PixelGRU", "data": {}}, progress=False)
    wide = load_dataset("digits", image_size=(8, 6))
    with pytest.raises(ValueError, match="square images, got 8x6"):  # refused before the run folder is made
        train(PixelGRU((8, 6), levels=17, hidden_size=4, num_classes=10, augmentations=8), wide, str(tmp_path / "d"),
              TrainSettings(steps=1, augment="dihedral"), meta={"model": "PixelGRU", "data": {}}, progress=False)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
    with pytest.raises(ValueError, match="augment must be one of"):
        TrainSettings(augment="rotate")


def test_train_device_and_weight_dropout_options(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--weight-dropout", "0.3",
                 "--device", "cpu", *TINY]) == 0
    model, _ = load_model(str(out / "model.pt"))
    assert model.weight_dropout == 0.3 and model.h0.device.type == "cpu"
    # Checked before any data is read or folder written, in one line naming the option.
    _expect_one_line_error(["train", "--out", str(tmp_path / "a"), "--device", "gpu0"], "--device 'gpu0'")
    _expect_one_line_error(["train", "--out", str(tmp_path / "b"), "--device", "meta"], "cpu or cuda")
    _expect_one_line_error(["train", "--out", str(tmp_path / "c"), "--weight-dropout", "1"], "weight_dropout")
    if not torch.cuda.is_available():
        _expect_one_line_error(["train", "--out", str(tmp_path / "d"), "--device", "cuda"], "no CUDA device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _train_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="there are 2 CUDA devices"):
        _train_device("cuda:2")
    # Under torchrun: one process per GPU, GPU LOCAL_RANK.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _train_device("cuda") == torch.device("cuda", 1)
    assert _train_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="under torchrun give cuda; each process takes GPU LOCAL_RANK"):
        _train_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="GPU is cuda:1, but there are 1 CUDA devices"):
        _train_device("cuda")
    assert not (tmp_path / "a").exists()


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch hacked-by-checkpoint",))


def test_bad_truncated_and_hostile_checkpoints(tmp_path, monkeypatch):
    good = tmp_path / "good.pt"
    data = load_dataset("digits")
    model = PixelGRU(8, levels=17, hidden_size=8, num_classes=10)
    save_checkpoint(str(good), {"model": "PixelGRU", "config": model.config, "state": model.state_dict()})
    out = str(tmp_path / "x.png")

    _expect_one_line_error(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", out], "not found")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    _expect_one_line_error(["sample", "--checkpoint", str(truncated), "--out", out], "truncated.pt")
    text = tmp_path / "text.pt"
    text.write_text("hello")
    _expect_one_line_error(["eval", "--checkpoint", str(text)], "not a checkpoint")

    # A torch.save file whose unpickling would run a command: refused, and nothing runs.
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "rnngen-checkpoint", "version": 1, "model": "PixelGRU", "payload": _Hostile()}, hostile)
    _expect_one_line_error(["sample", "--checkpoint", str(hostile), "--out", out], "refused")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(str(hostile))
    assert not (tmp_path / "hacked-by-checkpoint").exists()

    newer = tmp_path / "newer.pt"
    save_checkpoint(str(newer), {"model": "PixelGRU", "config": model.config, "state": model.state_dict(), "version": 99})
    _expect_one_line_error(["sample", "--checkpoint", str(newer), "--out", out], "newer")
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(str(wrong), {"model": "PixelGRU", "config": {**model.config, "hidden_size": 9},
                                 "state": model.state_dict()})
    _expect_one_line_error(["sample", "--checkpoint", str(wrong), "--out", out], "does not describe a valid")
    _expect_one_line_error(["sample", "--checkpoint", str(good), "--out", out, "--labels", "3,12"], "--labels")
    _expect_one_line_error(["sample", "--checkpoint", str(good), "--out", out, "--temperature", "0"], "temperature")
    _expect_one_line_error(["train", "--data", "mnist:/nowhere", "--out", str(tmp_path / "r")], "not found")
    _expect_one_line_error(["train", "--data", "digits", "--out", str(tmp_path / "r2"), "--resume"], "no checkpoint.pt")
    weights_only = tmp_path / "r3"
    weights_only.mkdir()
    (weights_only / "checkpoint.pt").write_bytes(good.read_bytes())  # a model.pt: no optimiser state
    _expect_one_line_error(["train", "--out", str(weights_only), "--resume"], "cannot resume from it")
    _expect_one_line_error(["train", "--out", str(weights_only), "--steps", "2"], "--force")
    _expect_one_line_error(["train", "--out", str(tmp_path / "r4"), "--grad-clip", "nan"], "grad_clip")
    zero = tmp_path / "zero.pt"
    save_checkpoint(str(zero), {"model": "PixelGRU", "config": model.config, "state": model.state_dict(), "version": 0})
    _expect_one_line_error(["sample", "--checkpoint", str(zero), "--out", out], "version 0 is not valid")
    # A config far bigger than the weights the file holds is refused before anything is allocated.
    huge = tmp_path / "huge.pt"
    save_checkpoint(str(huge), {"model": "PixelGRU", "config": {**model.config, "hidden_size": 10**6},
                                "state": model.state_dict()})
    _expect_one_line_error(["sample", "--checkpoint", str(huge), "--out", out], "do not match its config")
    del data


def test_interrupted_checkpoint_write_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    model = PixelGRU(4, levels=3, hidden_size=4)
    save_checkpoint(str(path), {"model": "PixelGRU", "config": model.config, "state": model.state_dict()})
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(str(path), {"model": "PixelGRU", "config": model.config, "state": model.state_dict()})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.pt"]


def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "20", "--hidden", "16", "--no-progress"]) == 0
    for name in ("samples.png", "completions.png", "samples.npz", "metrics.json", "checkpoint.pt", "model.pt"):
        assert (out / name).is_file(), name
    arrays = np.load(out / "samples.npz")
    assert arrays["images"].shape == (100, 8, 8) and arrays["labels"].tolist() == [d for d in range(10) for _ in range(10)]
    assert "test_bits_per_dim" in json.loads((out / "metrics.json").read_text())
    printed = capsys.readouterr().out
    assert "Test bits/dim" in printed and "Sampling 100 digits" in printed


def test_hostile_pickle_helper_really_runs_code(tmp_path, monkeypatch):
    """The hostile payloads above are real: plain pickle would run them."""
    monkeypatch.chdir(tmp_path)
    pickle.loads(pickle.dumps(_Hostile()))
    assert (tmp_path / "hacked-by-checkpoint").exists()


def _wait_for(path, process, timeout=120.0):
    import time
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)


def test_resume_after_a_real_kill_ends_where_an_uninterrupted_run_ends(tmp_path):
    """SIGKILL (no cleanup, no atexit) at a random point after the first checkpoint: the checkpoint
    on disk loads, and --resume from it ends bit for bit where an uninterrupted run ends."""
    import signal
    args = ["--data", "digits", "--steps", "200", "--checkpoint-every", "10", "--eval-every", "0", *TINY]
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "rnngen", "train", "--out", str(killed), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(killed / "checkpoint.pt", process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    step = load_checkpoint(str(killed / "checkpoint.pt"))["step"]
    assert 0 < step < 200
    code, _, err = _run("train", "--out", str(killed), "--resume", *args)
    assert code == 0, err
    code, _, err = _run("train", "--out", str(tmp_path / "whole"), *args)
    assert code == 0, err
    resumed = load_checkpoint(str(killed / "checkpoint.pt"))
    whole = load_checkpoint(str(tmp_path / "whole" / "checkpoint.pt"))
    assert resumed["step"] == whole["step"] == 200
    for name, value in whole["state"].items():
        assert torch.equal(resumed["state"][name], value), name


_WRITER = """
import sys, torch
from rnngen.training import save_checkpoint
payload = {{"model": "PixelGRU", "config": {{}}, "state": {{"w": torch.zeros(2**21)}}, "step": 0}}
for step in range(10**9):
    payload["step"] = step
    payload["state"]["w"].fill_(step)
    save_checkpoint({path!r}, payload)
    if step == 0:
        print("first", flush=True)
"""


def test_sigkill_during_checkpoint_writes_never_leaves_a_broken_file(tmp_path):
    """A process rewriting an 8 MB checkpoint in a loop, killed at random moments: what is on
    disk is always one whole checkpoint (atomic rename), never a torn one."""
    import random
    import signal
    import time
    path = tmp_path / "checkpoint.pt"
    rng = random.Random(0)
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-c", _WRITER.format(path=str(path))], stdout=subprocess.PIPE,
                                   text=True)
        try:
            assert process.stdout.readline().strip() == "first"
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
            process.stdout.close()
        payload = load_checkpoint(str(path))
        assert (payload["state"]["w"] == payload["step"]).all()


def test_a_short_run_saves_a_model_as_good_as_its_training(tmp_path):
    """The moving average is warmed up: after 80 steps at ema=0.999 the saved weights are about
    the last tenth of the run's (an unwarmed average would still be 92% the initial weights),
    and the saved model's own score on training images is in the metrics."""
    from rnngen.training.trainer import ema_decay, evaluate

    assert ema_decay(0.999, 1) == 2 / 11 and ema_decay(0.999, 150) == 151 / 160 and ema_decay(0.999, 10**5) == 0.999
    data = load_dataset("digits")
    meta = {"model": "PixelGRU", "data": {"spec": "digits"}}
    scores = {}
    for ema in (0.0, 0.999):
        torch.manual_seed(0)
        model = PixelGRU(8, levels=17, hidden_size=32, num_classes=10, backend="reference")
        if ema == 0:
            initial = evaluate(model, data.train)
        metrics = train(model, data, str(tmp_path / f"ema-{ema}"), TrainSettings(
            steps=80, batch_size=32, warmup=10, eval_every=0, checkpoint_every=0, ema=ema), meta=meta, overwrite=True,
            progress=False)
        assert metrics["train_images_evaluated"] == 1000
        seen = type(data.train)(data.train.images[:1000], data.train.labels[:1000], 17, 10)
        assert abs(metrics["train_bits_per_dim_saved"] - evaluate(model, seen)) < 1e-9  # the model returned = saved
        scores[ema] = metrics["train_bits_per_dim_saved"]
    assert scores[0.0] < initial - 1.0, (initial, scores)  # the run learned something
    assert scores[0.999] < scores[0.0] + 0.15, scores  # and the averaged model saved kept it


def test_train_on_builtin_mnist_takes_its_recipe(tmp_path, capsys):
    """`rnngen train --data mnist --binarize` with no model options trains binarized MNIST's recipe
    (hidden 256, no augmentation, five pixels in each of two rows above), on stochastically
    binarized digits, and says what the saved model scores; at 256 levels (or --levels 2) the
    data's level count picks the recipe."""
    out = tmp_path / "mnist"
    assert main(["train", "--data", "mnist", "--binarize", "--out", str(out), "--steps", "2", "--eval-every", "0",
                 "--no-progress"]) == 0
    model, payload = load_model(str(out / "model.pt"))
    assert (model.hidden_size, model.image_size, model.levels, model.augmentations) == (256, (28, 28), 2, 0)
    assert payload["data"] == {"spec": "mnist", "levels": None, "binarize": "stochastic", "image_size": None,
                               "channels": None}
    printed = capsys.readouterr().out
    assert "the saved model on 1000 training images" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["batch_size"] == 32 and metrics["train"]["weight_decay"] == 0.01
    assert (model.above, model.above_rows, metrics["train"]["steps"]) == (2, 2, 2)
    for levels, rank in (([], 16), (["--levels", "2"], 0)):
        out = tmp_path / f"mnist{len(levels)}"
        assert main(["train", "--data", "mnist", *levels, "--out", str(out), "--steps", "1", "--eval-every", "0",
                     "--no-progress"]) == 0
        model, _ = load_model(str(out / "model.pt"))
        assert (model.above, model.above_rows, model.above_rank) == (2, 2, rank)


def test_train_with_another_cell_and_sample_it(tmp_path, capsys):
    """--cell lstm trains PixelGRU with the LSTM cell; the checkpoint rebuilds it (its config
    records the cell) for sample; the models that run the GRU refuse another cell by name."""
    out = tmp_path / "lstm"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--cell", "lstm", *TINY]) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["config"]["cell"] == "lstm" and saved["state"]["weight_hh"].shape == (4 * 16, 16)
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png"), "--n", "2"]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "vae"), "--model", "generator-vae",
                 "--augment", "none", "--cell", "lstm", *TINY]) == 2
    assert "--cell lstm is an option of --model pixelgru only" in capsys.readouterr().err
