"""Do the class-conditional samples look like their digit? An ordinary classifier (an SVM, 99% on
real test digits) trained on the real digits judges them."""

import pytest
import torch

from rnngen.cli import pretrained_path
from rnngen.data import load_dataset
from rnngen.models import PixelGRU, load_model
from rnngen.training import TrainSettings, evaluate, train

svm = pytest.importorskip("sklearn.svm")


@pytest.fixture(scope="module")
def judge():
    data = load_dataset("digits")
    classifier = svm.SVC(gamma=0.001, C=10).fit(data.train.images.flatten(1).float().numpy(),
                                                                  data.train.labels.numpy())
    accuracy = (classifier.predict(data.test.images.flatten(1).float().numpy()) == data.test.labels.numpy()).mean()
    assert accuracy > 0.97  # it is a competent judge
    return classifier


def _recognised(model, judge, per_class: int, seed: int = 0) -> float:
    labels = torch.arange(10).repeat_interleave(per_class)
    samples = model.sample(len(labels), labels=labels, seed=seed)
    return float((judge.predict(samples.flatten(1).float().numpy()) == labels.numpy()).mean())


def test_bundled_model_meets_the_quality_goals(judge):
    model, payload = load_model(pretrained_path())
    assert model.mixture == "dihedral"
    assert _recognised(model, judge, per_class=50) >= 0.90       # 0.965-0.975 measured (1000 samples)
    # 1.5845 measured, the mixture over the eight orderings; the project's goal is 1.6.
    assert evaluate(model, load_dataset("digits").test) <= 1.59


def test_a_short_training_run_learns_the_classes(judge, tmp_path):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = PixelGRU(8, levels=17, hidden_size=64, num_classes=10)
    settings = TrainSettings(steps=500, batch_size=64, lr=1e-2, eval_every=0, checkpoint_every=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny GEMMs: one thread is fastest, and immune to a busy machine
    try:
        train(model, data, str(tmp_path), settings, meta={"model": "PixelGRU", "data": {"spec": "digits"}},
              progress=False)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    assert _recognised(model, judge, per_class=30) >= 0.7  # 0.86 measured; the bundled model: 0.9+
