"""GeneratorGAN, the article's generator trained against a critic: gradients through the decode op
(fused against reference), the adversarial loop (resume ends where an uninterrupted run ends, both
optimisers saved), the commands (train / resume / sample / eval / complete) and bad input."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from helpers import BACKENDS

import rnngen
from rnngen.checkpoint import CheckpointError, load_checkpoint
from rnngen.cli import main
from rnngen.data import load_dataset
from rnngen.models import MODELS, GeneratorGAN, build_model, load_model
from rnngen.training import TrainSettings, recipes
from rnngen.training.adversarial import train_adversarial
from rnngen.training.recipes import make_model

TINY = ["--hidden", "8", "--batch-size", "8", "--critic-size", "4", "--z-dim", "4", "--no-progress"]
META = {"model": "GeneratorGAN", "data": {"spec": "digits"}}


def _gan(backend="reference", num_classes=3, size=(4, 4), levels=5):
    torch.manual_seed(0)
    return GeneratorGAN(size, levels=levels, z_dim=3, hidden_size=8, critic_size=4, num_classes=num_classes,
                        backend=backend)


def _hinge_losses(model, real, z, labels):
    fake = model(z, labels)
    scores = model.critic(torch.cat([real, fake.detach()]), None if labels is None else torch.cat([labels, labels]))
    loss_d = F.relu(1 - scores[:len(real)]).mean() + F.relu(1 + scores[len(real):]).mean()
    return loss_d, -model.critic(fake, labels).mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_reach_both_networks_through_the_decode_op(backend):
    """The critic gets gradients from its loss; the generator's, through all H*W steps of the
    fused decode op, equal the reference backend's (the plain per-step loop)."""
    images = torch.randint(0, 5, (6, 1, 4, 4))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    z = torch.randn(6, 3)
    grads = {}
    for name in ("reference", backend):
        model = _gan(name)
        with torch.no_grad():  # away from the small initial values, so every gate matters
            for p in model.generator.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        loss_d, loss_g = _hinge_losses(model, model.intensities(images), z, labels)
        critic = torch.autograd.grad(loss_d, list(model.critic.parameters()))
        assert all(torch.isfinite(g).all() for g in critic) and sum(g.abs().sum() for g in critic) > 0
        grads[name] = dict(zip([n for n, _ in model.generator.named_parameters()],
                               torch.autograd.grad(loss_g, list(model.generator.parameters()))))
    for name, grad in grads[backend].items():
        assert grad.abs().sum() > 0, name  # every generator weight, fc_init to fc_out
        torch.testing.assert_close(grad, grads["reference"][name], rtol=1e-4, atol=1e-6, msg=name)


def test_model_interface_and_samples():
    model = _gan(num_classes=None)
    assert model.num_classes is None and model.has_likelihood is False and model.steps == 16
    x = model(torch.randn(5, 3))
    assert x.shape == (5, 1, 4, 4) and x.dtype == torch.float32  # intensities, unclamped (the critic's input)
    samples = model.sample(7, seed=3)
    assert samples.shape == (7, 1, 4, 4) and samples.dtype == torch.long and 0 <= samples.min() <= samples.max() <= 4
    assert torch.equal(samples, model.sample(7, seed=3)) and not torch.equal(samples, model.sample(7, seed=4))
    assert torch.equal(model.sample(3, seed=3, row_offset=4), samples[4:])  # what sharded sampling relies on
    conditional = _gan(num_classes=3)
    assert conditional.generator.fc_init.in_features == 3 + 3  # [z, one-hot class]
    assert isinstance(conditional.generator, rnngen.RNNImageGenerator)  # the article's class, unchanged
    assert conditional.sample(4, labels=torch.tensor([0, 1, 2, 1]), seed=0).shape == (4, 1, 4, 4)
    # Any image size: the critic's convolutions stop halving at 1x1.
    for size in ((1, 1), (2, 5), (9, 4)):
        tiny = GeneratorGAN(size, levels=2, z_dim=2, hidden_size=4, critic_size=2)
        assert tiny.critic(tiny(torch.randn(2, 2))).shape == (2,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_teacher_forcing_given_the_free_running_output_returns_it(backend):
    """teacher_forced reads the given previous pixels through one fused scan; given the decode
    op's own free-running output it must reproduce that output (same recurrence, same inputs),
    and its gradient must match the reference backend's."""
    model = _gan(backend)
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    z, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    free = model(z, labels).detach()
    torch.testing.assert_close(model.teacher_forced(z, free, labels), free, rtol=1e-5, atol=1e-6)
    # Other pixels read give other outputs from the second pixel on (the first is fc_out(h_0)).
    other = model.teacher_forced(z, torch.rand(5, 1, 4, 4), labels)
    torch.testing.assert_close(other[..., 0, 0], free[..., 0, 0])
    assert (other - free).flatten(1)[:, 1:].abs().amax(1).min() > 1e-4
    images = torch.rand(5, 1, 4, 4)
    grads = []
    for name in ("reference", backend):
        model.generator.backend = name
        loss = model.teacher_forced(z, images, labels).pow(2).sum()
        grads.append(torch.autograd.grad(loss, list(model.generator.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"`images` must be intensities of shape \[5, 1, 4, 4\]"):
        model.teacher_forced(z, torch.rand(5, 4, 4), labels)
    with pytest.raises(ValueError, match=r"`z` must be a Tensor of shape \[N, 3\]"):
        model.teacher_forced(torch.randn(5, 2), images, labels)


def test_update_gates_start_with_chrono_time_scales():
    """The update gate's biases give each unit a memory of 1 to H*W steps (log U(1, H*W)), the
    input side's are zero; the other gates keep nn.GRUCell's initialisation."""
    model = GeneratorGAN((6, 5), levels=2, z_dim=2, hidden_size=64, critic_size=2)
    rnn = model.generator.rnn
    update = rnn.bias_hh[64:128].detach()
    assert torch.equal(rnn.bias_ih[64:128], torch.zeros(64))
    assert 0 <= update.min() and update.max() <= torch.log(torch.tensor(30.0)) and update.std() > 0.3
    assert rnn.bias_hh[:64].abs().max() <= 1 / 8 and rnn.bias_hh[128:].abs().max() <= 1 / 8  # U(+-1/sqrt(H))


def test_bad_arguments_raise_clear_errors():
    model = _gan()
    with pytest.raises(ValueError, match="`labels` needed: this GeneratorGAN is class-conditional"):
        model(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"`labels` must be in 0..2, got 0..3"):
        model.sample(2, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"`labels` must have shape \[2\]"):
        model(torch.randn(2, 3), torch.tensor([0]))
    with pytest.raises(TypeError, match="`labels` must be an integer Tensor"):
        model(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="unconditional"):
        _gan(num_classes=None).sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"`z` must be a Tensor of shape \[N, 3\]"):
        model(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        model.sample(2, labels=torch.tensor([0, 1]), temperature=0)
    with pytest.raises(ValueError, match="images values must be in 0..4, got 0..7"):
        model.intensities(torch.tensor([[[[0, 7, 0, 0]] * 4]]))
    for name, kwargs in (("hidden_size", {"hidden_size": 0}), ("critic_size", {"critic_size": 1.5}),
                         ("z_dim", {"z_dim": True}), ("levels", {"levels": 1}), ("num_classes", {"num_classes": 1})):
        with pytest.raises(ValueError, match=f"^{name} must be an int"):
            GeneratorGAN(4, **kwargs)
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="`augment` needs a model that is told the transform"):
        make_model("generator-gan", data, augment="dihedral")
    with pytest.raises(ValueError, match="`channels` 1"):
        make_model("seed-gan", load_dataset("digits", channels=3), augment="none")
    kind, unconditional = make_model("seed-gan", data, hidden=8, conditional=False, augment="none")
    assert kind == "GeneratorGAN" and unconditional.num_classes is None and unconditional.z_dim == 64


def test_adversarial_loop_refuses_what_it_cannot_do(tmp_path, monkeypatch):
    data = load_dataset("digits")
    model = GeneratorGAN(8, levels=17, hidden_size=4, critic_size=2, num_classes=10, backend="reference")
    for settings, match in ((TrainSettings(steps=1, shift=1), "`shift` and `augment`"),
                            (TrainSettings(steps=1, augment="flips"), "`shift` and `augment`")):
        with pytest.raises(ValueError, match=match):
            train_adversarial(model, data, str(tmp_path / "a"), settings, meta=META, progress=False)
    with pytest.raises(ValueError, match=r"does not match the model \(5 levels"):
        train_adversarial(_gan(), data, str(tmp_path / "a"), TrainSettings(steps=1), meta=META, progress=False)
    with pytest.raises(ValueError, match="needs data labelled with as many classes"):
        train_adversarial(GeneratorGAN(8, levels=17, hidden_size=4, num_classes=3), data, str(tmp_path / "a"),
                          TrainSettings(steps=1), meta=META, progress=False)
    from rnngen.training import adversarial

    monkeypatch.setattr(adversarial, "world", lambda: (2, 0))
    with pytest.raises(ValueError, match="trains in one process: run it without torchrun"):
        train_adversarial(model, data, str(tmp_path / "a"), TrainSettings(steps=1), meta=META, progress=False)
    assert not (tmp_path / "a").exists()  # refused before the run folder is made


@pytest.mark.parametrize("ema,warmup", [(0.0, 0), (0.99, 0), (0.99, 5)])
def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, ema, warmup):
    """With ``warmup``, the first steps are the reconstruction warm-up and the run is "killed"
    inside it: the encoder and its optimiser must come back from the checkpoint."""
    data = load_dataset("digits")

    def fresh():
        torch.manual_seed(0)
        return GeneratorGAN(8, levels=17, z_dim=4, hidden_size=8, critic_size=4, num_classes=10, backend="reference")

    # (In warm-up throughout, as in test_train_cli: the cosine's learning rates depend on `steps`.)
    settings = TrainSettings(steps=6, batch_size=8, lr=0.1, warmup=100, eval_every=2, checkpoint_every=4, ema=ema,
                             reconstruction_steps=warmup)
    whole = fresh()
    before = {k: v.clone() for k, v in whole.state_dict().items()}
    metrics = train_adversarial(whole, data, str(tmp_path / "a"), settings, meta=META, progress=False)
    # Both networks were trained.
    for prefix in ("generator.", "critic."):
        assert any(not torch.equal(v, before[k]) for k, v in whole.state_dict().items() if k.startswith(prefix))
    assert [h["step"] for h in metrics["history"]] == ([2, 4, 5, 6] if warmup else [2, 4, 6])
    assert metrics["likelihood"] is False
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["steps"] == 6
    # "Killed" after step 4: a new process resumes from the checkpoint of step 4.
    part = fresh()
    train_adversarial(part, data, str(tmp_path / "b"), TrainSettings(**{**settings.__dict__, "steps": 4}),
                      meta=META, progress=False)
    halfway = load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"), resumable=True)
    assert ("encoder" in halfway) == ("reconstruction" in halfway["optimizer"]) == bool(warmup)
    resumed = fresh()
    train_adversarial(resumed, data, str(tmp_path / "b"), settings, meta=META, resume=True, progress=False)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    saved = load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"), resumable=True)
    reference = load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"), resumable=True)
    assert saved["step"] == reference["step"] == 6 and saved["metrics"]["history"] == reference["metrics"]["history"]
    for which in ("generator", "critic"):  # both optimisers' moments, saved and restored
        got, want = saved["optimizer"][which]["state"], reference["optimizer"][which]["state"]
        assert len(got) == len(want) > 0
        for a, b in zip(got.values(), want.values()):
            assert all(torch.equal(a[k], b[k]) for k in a)
    assert "encoder" not in saved and "reconstruction" not in saved["optimizer"]  # past the warm-up: not needed
    if warmup:  # the warm-up's generator, written once it ended, the same in both runs
        first, second = (load_checkpoint(str(tmp_path / run / "warmup.pt"))["state"] for run in "ab")
        assert all(torch.equal(first[k], second[k]) for k in first)
    assert ("raw_state" in saved) == bool(ema)  # with EMA: the averaged generator to sample, the raw to resume
    if ema:
        assert not torch.equal(saved["state"]["generator.rnn.weight_hh"], saved["raw_state"]["generator.rnn.weight_hh"])
        assert torch.equal(saved["state"]["critic.head.parametrizations.weight.original"],
                           saved["raw_state"]["critic.head.parametrizations.weight.original"])  # the critic raw
    with pytest.raises(CheckpointError, match="already at step 6"):
        train_adversarial(fresh(), data, str(tmp_path / "b"), settings, meta=META, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        train_adversarial(fresh(), data, str(tmp_path / "b"), settings, meta=META, progress=False)


def test_reconstruction_warmup_teaches_the_generator_the_images(tmp_path):
    """The warm-up's steps lower the teacher-forced reconstruction error of real images (what the
    adversarial steps then start from); its model file holds the warmed-up generator; the
    adversarial steps run the critic at ``critic_lr`` on the same schedule as the generator."""
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = GeneratorGAN(8, levels=17, z_dim=4, hidden_size=16, critic_size=4, num_classes=10, backend="cpu")
    images = model.intensities(data.test.images[:64])
    labels = data.test.labels[:64].long()

    def error(m):
        with torch.no_grad():
            return (m.teacher_forced(torch.zeros(64, 4), images, labels) - images).pow(2).mean().item()

    before = error(model)
    settings = TrainSettings(steps=151, batch_size=32, lr=1e-5, critic_lr=3e-4, warmup=1, eval_every=0,
                             checkpoint_every=0, reconstruction_steps=150)
    metrics = train_adversarial(model, data, str(tmp_path / "a"), settings, meta=META, progress=False)
    warmed, _ = load_model(str(tmp_path / "a" / "warmup.pt"))
    assert error(warmed) < 0.7 * before, (error(warmed), before)
    assert [h["step"] for h in metrics["history"]] == [150, 151] and "kl" in metrics["history"][0]
    saved = load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"), resumable=True)
    g_lr = saved["optimizer"]["generator"]["param_groups"][0]["lr"]
    assert g_lr == pytest.approx(1e-5) and saved["optimizer"]["critic"]["param_groups"][0]["lr"] == pytest.approx(3e-4)


def _run(*args):
    done = subprocess.run([sys.executable, "-m", "rnngen", *args], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def test_train_resume_sample_eval_complete_commands(tmp_path, capsys, monkeypatch):
    from rnngen import evaluation

    # eval judges digits samples with a classifier it trains first: a short one is enough here.
    train_classifier = evaluation.train_classifier
    monkeypatch.setattr(evaluation, "train_classifier", lambda data, **kw: train_classifier(data, steps=20))
    out = tmp_path / "run"
    code, stdout, stderr = _run("train", "--model", "generator-gan", "--data", "digits", "--out", str(out),
                                "--steps", "3", "--backend", "cpu", *TINY)
    assert code == 0, stderr
    assert "training GeneratorGAN" in stdout and "no likelihood to evaluate" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "model.pt", "warmup.pt"]
    saved = load_checkpoint(str(out / "checkpoint.pt"), resumable=True)
    assert saved["model"] == "GeneratorGAN" and saved["step"] == 3
    assert set(saved["optimizer"]) == {"generator", "critic"}
    # The GAN recipe, not the digits one; 3 steps: the recipe's share of them (6000 of 9600) warm up.
    assert saved["train"]["lr"] == recipes.GAN.lr == 1e-5 and saved["train"]["ema"] == 0.999
    assert saved["train"]["critic_lr"] == recipes.GAN.critic_lr == 4e-4
    assert saved["train"]["reconstruction_steps"] == 3 * recipes.GAN.reconstruction_steps // recipes.GAN.steps == 1
    # --resume with more steps continues the run (both optimisers restored: see the test above).
    assert main(["train", "--out", str(out), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert load_checkpoint(str(out / "checkpoint.pt"), resumable=True)["step"] == 5
    assert json.loads((out / "metrics.json").read_text())["steps"] == 5
    model, _ = load_model(str(out / "model.pt"))
    assert isinstance(model, GeneratorGAN) and model.num_classes == 10 and model.levels == 17
    assert MODELS["GeneratorGAN"] is GeneratorGAN

    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png"), "--n", "20",
                 "--labels", "3,7", "--save-array", str(npz)]) == 0
    import numpy as np

    arrays = np.load(npz)
    assert arrays["images"].shape == (20, 8, 8) and arrays["labels"].tolist() == [3] * 10 + [7] * 10
    scores = tmp_path / "scores.json"
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--samples", "20", "--json", str(scores)]) == 0
    printed = capsys.readouterr().out
    assert "GeneratorGAN has no likelihood: sample scores only (20 samples)" in printed
    assert "bits/dim" not in printed and "20 samples:" in printed
    result = json.loads(scores.read_text())
    assert result["bits_per_dim"] is None and result["samples"] == 20 and 0 <= result["recognised"] <= 1
    assert main(["complete", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "c.png")]) == 2
    assert "a GeneratorGAN cannot complete images" in capsys.readouterr().err


def test_seed_gan_alias_and_unconditional(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "seed-gan", "--data", "digits", "--no-conditional", "--out", str(out),
                 "--steps", "1", "--ema", "0", *TINY]) == 0
    model, payload = load_model(str(out / "model.pt"))
    assert payload["model"] == "GeneratorGAN" and model.num_classes is None and model.z_dim == 4
    # Rebuilt from its config on the meta device first (spectral norm's buffers included).
    assert build_model("GeneratorGAN", payload["config"], payload["state"]).critic_size == 4
    # Its own recipe whatever the data (not PixelGRU's MNIST or digits recipe).
    for data in ("digits", "mnist"):
        for name in ("generator-gan", "seed-gan"):
            assert recipes.recipe_for(data, name) == ("gan", recipes.GAN)
    assert recipes.recipe_for("mnist", "generator-vae") == ("mnist", recipes.MNIST)


def _expect_one_line_error(args, match):
    code, stdout, stderr = _run(*args)
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert match in stderr, stderr


@pytest.mark.parametrize("extra,match", [
    (["--dropout", "0.3"], "--dropout is not an option of --model generator-gan"),
    (["--per-column"], "--per-column is not an option of --model generator-gan"),
    (["--above", "1"], "--above, --above-rows and --above-rank are options of --model pixelgru only"),
    (["--above-rows", "2"], "--above, --above-rows and --above-rank are options of --model pixelgru only"),
    (["--reconstruction-steps", "-1"], "reconstruction_steps must be a finite number >= 0, got -1"),
    (["--critic-lr", "nan"], "critic_lr must be a finite number >= 0, got nan"),
    (["--augment", "flips"], "--augment needs a model that is told the transform"),
    (["--critic-size", "0"], "--critic-size must be >= 1, got 0"),
    (["--z-dim", "0"], "--z-dim must be >= 1, got 0"),
    (["--binarize", "--channels", "3"], "--channels 1"),
])
def test_bad_options_are_one_line_errors(tmp_path, extra, match):
    _expect_one_line_error(["train", "--model", "generator-gan", "--out", str(tmp_path / "r"), "--steps", "1",
                            *extra], match)
    assert not (tmp_path / "r").exists()


def test_critic_size_belongs_to_the_gan(tmp_path):
    _expect_one_line_error(["train", "--out", str(tmp_path / "r"), "--critic-size", "8"],
                           "--critic-size is an option of --model generator-gan only")
    for option in ("--reconstruction-steps", "--critic-lr"):
        _expect_one_line_error(["train", "--out", str(tmp_path / "r"), "--steps", "1", option, "1"],
                               "--reconstruction-steps and --critic-lr are options of --model generator-gan only")
    assert not (tmp_path / "r").exists()
