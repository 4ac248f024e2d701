"""Rule classifiers for the rules paper's mitigation experiments (protocol Sec. 1.5, 6.1, 6.3, 4.4).

    from fullscale import classify
    cfg = classify.make_config("A", "unet", noisy=True, preset="cpu")
    metrics = classify.train_classifier(cfg, "runs/clf/A-noisy-unet")     # held-out accuracy, files in C/
    net, meta = classify.load_classifier("runs/clf/A-noisy-unet")         # meta: task, image_size, arch, noisy

Noisy (time-conditioned) classifiers guide the sampler (fullscale.guidance); clean ones filter
samples (fullscale.filtering). Method and numbers: docs/mitigation.md.
"""

from fullscale.classify.config import PRESET_NAMES, PRESETS, TASKS, ClassifierConfig, make_config
from fullscale.classify.nets import ARCHS, CLEAN_ARCHS, NOISY_ARCHS, build, log_prob, param_count
from fullscale.classify.train import held_out_accuracy, load_classifier, nt_xent, train_classifier

# held-out accuracy (%) of the authors' clean filters on the 3-class contrastive data (protocol Sec. 4.4,
# their `test_acc.pdf`); "conv" is the plot's small conv "U-Net"
PAPER_ACCURACY = {
    "mlp": {"A": 67.47, "B": 77.58, "C": 45.83, "D": 81.17},
    "resnet8": {"A": 62.74, "B": 66.50, "C": 80.17, "D": 75.83},
    "conv": {"A": 64.25, "B": 75.13, "C": 82.37, "D": 81.17},
}

__all__ = ["ARCHS", "CLEAN_ARCHS", "NOISY_ARCHS", "PRESETS", "PRESET_NAMES", "TASKS", "PAPER_ACCURACY",
           "ClassifierConfig", "make_config", "build", "param_count", "log_prob", "nt_xent",
           "train_classifier", "load_classifier", "held_out_accuracy"]
