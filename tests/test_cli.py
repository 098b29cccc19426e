"""The rnngen command: info and argument errors (the image commands: test_train_cli.py)."""

import subprocess
import sys

from rnngen.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("reference", "cpu", "triton", "cuda"):
        assert name in out


def test_bad_arguments_exit_nonzero_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "rnngen", "nonsense"], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "rnngen", "sample", "--out", str(tmp_path / "x.png"), "--n", "0"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "--n must be >= 1" in run.stderr


def test_unavailable_backend_is_one_line(tmp_path, capsys):
    import pytest

    import rnngen

    if rnngen.backend_status()["cuda"] == "available":
        pytest.skip("the cuda backend is available here")
    assert main(["sample", "--out", str(tmp_path / "x.png"), "--backend", "cuda", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "backend 'cuda' is not available" in err and len(err.strip().splitlines()) == 1


def test_output_paths_of_the_wrong_kind_name_the_argument(tmp_path, capsys):
    """--out of train/demo is a folder, of sample/complete a file: the wrong kind is one line naming
    the argument, before any work, and the file in the way is left as it was."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for argv in (["train", "--data", "digits", "--out", str(a_file), "--steps", "1"], ["demo", "--out", str(a_file)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"--out {a_file} exists and is not a directory" in err and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep me"
    assert main(["sample", "--out", str(tmp_path), "--n", "2"]) == 2
    assert f"--out {tmp_path} is a directory" in capsys.readouterr().err
    assert main(["sample", "--out", str(tmp_path / "x.png"), "--n", "2", "--save-array", str(tmp_path)]) == 2
    assert f"--save-array {tmp_path} is a directory" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_the_cli_calls_the_library(tmp_path, capsys):
    """The command parses and calls: masks, sample labels, sharded sampling, the weights export,
    the recipes and the model built from options are library functions it uses, not its own.
    Library errors name the argument (`mask`); the command shows its option (--mask)."""
    import numpy as np
    import pytest
    import torch

    from rnngen import cli, distributed
    from rnngen.checkpoint import export_weights
    from rnngen.data import load_dataset
    from rnngen.images import sample_labels, save_arrays
    from rnngen.models import PixelGRU, completion_mask
    from rnngen.training import recipes
    from rnngen.training.trainer import world

    used = {"completion_mask": completion_mask, "sample_labels": sample_labels, "save_arrays": save_arrays,
            "sample_sharded": distributed.sample_sharded, "export_weights": export_weights,
            "make_model": recipes.make_model, "DEMO": recipes.DEMO, "BUNDLED": recipes.BUNDLED}
    assert all(getattr(cli, name) is value for name, value in used.items())
    assert not any(hasattr(cli, old) for old in ("_mask", "_labels_for", "_save_arrays", "_export", "_build_model",
                                                  "_distributed", "RECIPE"))
    assert world is distributed.world and world() == (1, 0)
    defaults = cli.build_parser().parse_args(["train", "--out", "x"])
    assert (defaults.hidden, defaults.augment, defaults.weight_dropout) == (None, None, None)  # the recipe's
    assert cli.recipe_for is recipes.recipe_for
    assert recipes.recipe_for("digits") == recipes.recipe_for(None) == ("bundled", recipes.BUNDLED)
    assert (recipes.BUNDLED.hidden, recipes.BUNDLED.augment, recipes.BUNDLED.weight_dropout) == (768, "dihedral", 0.2)
    for spec in ("mnist", "mnist:/data/mnist", "Fashion-MNIST:/data/f"):
        assert recipes.recipe_for(spec) == ("mnist", recipes.MNIST)
        assert recipes.recipe_for(spec, binary=True) == ("mnist-bin", recipes.MNIST_BIN)
    assert recipes.recipe_for("digits", binary=True) == ("bundled", recipes.BUNDLED)
    # 256 levels: the shipped mnist.pt's recipe; binarized: mnist-bin.pt's (docs/results-mnist.md).
    assert (recipes.MNIST.hidden, recipes.MNIST.steps, recipes.MNIST.augment) == (256, 10000, "none")
    assert (recipes.MNIST.above, recipes.MNIST.above_rows, recipes.MNIST.above_rank) == (2, 2, 16)
    assert (recipes.MNIST_BIN.hidden, recipes.MNIST_BIN.steps, recipes.MNIST_BIN.augment) == (256, 5000, "none")
    assert (recipes.MNIST_BIN.above, recipes.MNIST_BIN.above_rows, recipes.MNIST_BIN.above_rank) == (2, 2, 0)
    # Each shipped model is its recipe's run.
    for name, recipe in (("mnist", recipes.MNIST), ("mnist-bin", recipes.MNIST_BIN)):
        from rnngen.models import load_model, pretrained_path

        config = load_model(pretrained_path(name))[0].config
        assert (config["above"], config["above_rows"], config.get("above_rank", 0), config.get("positions", False)) == (
            recipe.above, recipe.above_rows, recipe.above_rank, recipe.positions), name

    assert completion_mask("top-half", (4, 3)).tolist() == [[True] * 3] * 2 + [[False] * 3] * 2
    assert completion_mask("top-quarter", (8, 2)).sum(1).tolist() == [2, 2] + [0] * 6
    assert completion_mask("left-half", (2, 4)).tolist() == [[True, True, False, False]] * 2
    np.save(tmp_path / "m.npy", np.eye(3, dtype=np.uint8))
    assert torch.equal(completion_mask(str(tmp_path / "m.npy"), (3, 3)), torch.eye(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^`mask` must be top-half, top-quarter, left-half or a \.npy file, got 'x'"):
        completion_mask("x", (3, 3))
    with pytest.raises(ValueError, match=r"^`mask` .*m\.npy must hold an array of shape \[3, 4\], got \[3, 3\]"):
        completion_mask(str(tmp_path / "m.npy"), (3, 4))
    with pytest.raises(FileNotFoundError, match="^`mask` file not found"):
        completion_mask(str(tmp_path / "none.npy"), (3, 3))
    assert main(["complete", "--out", str(tmp_path / "c.png"), "--n", "1", "--mask", "bottom-half"]) == 2
    assert capsys.readouterr().err.strip() == ("rnngen complete: error: --mask must be top-half, top-quarter, "
                                               "left-half or a .npy file, got 'bottom-half'")

    labels, columns = sample_labels(10, 20, "3,7")
    assert labels.tolist() == [3] * 10 + [7] * 10 and columns == 10
    assert sample_labels(10, 20, [3, 7])[0].tolist() == labels.tolist() and sample_labels(None, 9) == (None, 3)
    with pytest.raises(ValueError, match="^`labels` must be in 0..9, got 12"):
        sample_labels(10, 4, "3,12")

    data = load_dataset("digits")
    kind, model = recipes.make_model("pixelgru", data, **recipes.DEMO.model_options(hidden=8))
    assert kind == "PixelGRU" and isinstance(model, PixelGRU) and model.num_classes == 10 and model.mixture == "none"
    with pytest.raises(ValueError, match="^`augment` needs a model that is told the transform: use `model` pixelgru"):
        recipes.make_model("seed-vae", data, augment="dihedral")
    settings = recipes.demo_settings(500)
    assert (settings.steps, settings.ema, settings.eval_every, settings.lr) == (500, 0.0, 100, recipes.DEMO.lr)


def test_generator_vae_is_named_so_and_seed_vae_still_works(tmp_path, capsys):
    """--model generator-vae (the article's generator) writes model kind GeneratorVAE; seed-vae, its
    old name, is still accepted; --help names generator-vae only."""
    from rnngen.checkpoint import load_checkpoint

    help_text = subprocess.run([sys.executable, "-m", "rnngen", "train", "--help"], capture_output=True, text=True,
                               check=True, timeout=120).stdout
    assert "{pixelgru,generator-vae,generator-gan}" in help_text
    assert "seed-vae and seed-gan, their old names" in " ".join(help_text.split())
    for name in ("generator-vae", "seed-vae"):
        out = tmp_path / name
        assert main(["train", "--data", "digits", "--out", str(out), "--model", name, "--augment", "none",
                     "--steps", "2", "--hidden", "8", "--batch-size", "8", "--ema", "0", "--no-progress"]) == 0
        assert load_checkpoint(str(out / "model.pt"))["model"] == "GeneratorVAE"
    assert main(["train", "--data", "digits", "--out", str(tmp_path / "x"), "--model", "generator-vae",
                 "--no-progress"]) == 2
    assert "--augment needs a model that is told the transform: use --model pixelgru" in capsys.readouterr().err


def test_complete_images_file_errors_name_the_option(tmp_path, capsys):
    """--images is read by rnngen.images.load_arrays; its errors reach the user as --images."""
    import numpy as np

    from rnngen.cli import main
    import torch

    from rnngen.images import load_arrays

    out = str(tmp_path / "c.png")
    assert main(["complete", "--images", str(tmp_path / "none.npz"), "--out", out]) == 2
    assert capsys.readouterr().err.strip() == f"rnngen complete: error: --images file not found: {tmp_path / 'none.npz'}"
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 8, 8)))
    assert main(["complete", "--images", str(tmp_path / "bad.npz"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnngen complete: error: --images ") and "has no 'images' array" in err
    np.savez(tmp_path / "ok.npz", images=np.ones((2, 8, 8)), labels=np.array([1, 2]))
    images, labels = load_arrays(str(tmp_path / "ok.npz"))
    assert images.shape == (2, 1, 8, 8) and images.dtype == torch.int64 and labels.tolist() == [1, 2]


def test_shipped_models_by_name(tmp_path, capsys):
    import pytest

    from rnngen.cli import main
    from rnngen.models import pretrained_models, pretrained_path

    models = pretrained_models()
    assert "digits" in models and not any(name.endswith("classifier") for name in models)
    assert pretrained_path() == models["digits"] == pretrained_path("dig")
    with pytest.raises(ValueError, match="is not one of the shipped models: digits"):
        pretrained_path("cifar")
    assert main(["sample", "--model", "digits", "--n", "10", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["sample", "--model", "digits", "--checkpoint", models["digits"], "--out", str(tmp_path / "t.png")]) == 2
    assert "give --checkpoint or --model, not both" in capsys.readouterr().err


def test_guidance_option(tmp_path, capsys):
    """--guidance reaches PixelGRU.sample / complete / eval (the same images as the library's for
    the same seed) and is refused, naming the option, where it cannot apply."""
    import numpy as np
    import torch

    from rnngen.models import load_model, pretrained_path

    out = tmp_path / "g.png"
    assert main(["sample", "--model", "digits", "--n", "10", "--labels", "3", "--guidance", "1.5", "--seed", "2",
                 "--out", str(out), "--save-array", str(tmp_path / "g.npz")]) == 0
    model, _ = load_model(pretrained_path("digits"))
    want = model.sample(10, labels=torch.full((10,), 3), seed=2, guidance=1.5)
    assert np.array_equal(np.load(tmp_path / "g.npz")["images"].reshape(want.shape), want.numpy())
    assert not torch.equal(want, model.sample(10, labels=torch.full((10,), 3), seed=2))
    assert main(["complete", "--model", "digits", "--n", "2", "--samples", "1", "--guidance", "1",
                 "--out", str(tmp_path / "c.png")]) == 0
    capsys.readouterr()
    for argv in (["sample", "--n", "2"], ["complete", "--n", "1"], ["eval", "--samples", "10"]):
        assert main([*argv, "--guidance", "-1", *(["--out", str(out)] if argv[0] != "eval" else [])]) == 2
        assert "--guidance must be a finite number >= 0, got -1.0" in capsys.readouterr().err
