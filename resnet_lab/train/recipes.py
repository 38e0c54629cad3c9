"""Default recipes: for each dataset and model family, the input size and training settings with which
the default short run reaches an accuracy worth showing in its budget.

A recipe is what the Train page and ``python -m resnet_lab train`` start from; every setting stays the
user's to change. Each recipe says why (``Recipe.why``), in a sentence a page can show: "digits: 8 px
upsampled to 32, the size the CIFAR stem was designed for".

Measured by ``bench/time_to_accuracy.py``; BENCHMARKS.md has the figures.
The numbers behind the choices:
- CIFAR-stem ResNets (resnet20 …) were designed for 32-px inputs: two stride-2 stages take 32 to 8;
  at 8 px the last stage sees 2×2 maps and digits top out near 80%. Upsampled to 32 px, the same
  images reach 98%+.
- Small batches learn faster per image on a small dataset in a short run: 45 optimizer steps (3 epochs
  of 2,000 images at batch 128) leave resnet20 near chance on ``shapes``; batch 32 gets it to ~90%.
- One-cycle (warm-up to the peak and cosine down, Smith & Topin 2017) needs no separate warm-up, and
  weight decay 5e-4 is the CIFAR ResNet's (He et al. 2015 use 1e-4 at 64k iterations; short runs
  tolerate more).
- ImageNet-stem ResNets (resnet18 …) downsample 32×: they get 64 px on small datasets, so the last
  stage still sees 2×2 maps.

Named recipes for CIFAR-10 and CIFAR-100 (:func:`named_recipe`): ``paper`` is He et al. 2015's sec. 4.2 schedule, to the letter
where the lab can follow it (Table 6); ``short`` a lesson's run meant to reach 90% with resnet20 in minutes on a GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..data.registry import DataConfig, dataset_info
from ..models.published import TABLE6_ERROR
from ..spec import ModelSpec
from .config import TrainConfig

CPU_MAX_FOLDER_SIZE = 128  # user images larger than this are shrunk to it by default (a short run on a CPU)


@dataclass(frozen=True)
class Recipe:
    """A default input size and training schedule for one dataset and model family."""

    dataset: str  # registry name ("shapes", "digits", "folder:NAME", ...)
    image_size: int  # input side, px (a multiple of the model's stride where it can be)
    train_subset: int | None  # training images used (None: all)
    epochs: int
    batch_size: int
    lr: float  # peak learning rate (SGD with Nesterov momentum 0.9)
    schedule: str  # "onecycle" etc. (TrainConfig.schedule)
    weight_decay: float
    label_smoothing: float
    augment: bool  # pad-crop, plus a flip when the dataset says a flip keeps the label
    why: str  # one sentence for people: what was chosen and why
    budget: str  # what the run reaches in the lab's benchmark, e.g. "resnet20 reached 98% …"; never a time: how
    # long it takes here is the queue's estimate, learned from this lab's own runs (resnet_lab.jobs.eta)
    nesterov: bool = True  # SGD with Nesterov momentum (He et al. 2015: plain momentum)
    max_steps: int | None = None  # stop after this many optimizer steps (TrainConfig.max_steps); None: epochs
    milestones: tuple[int, ...] = ()  # "step" schedule: lr ÷10 at these steps (TrainConfig.milestones)
    val_fraction: float = 0.2  # share held out as val where a dataset has no official val split, or with holdout_val
    holdout_val: bool = False  # hold val_fraction of the training images out as val, report the official test split

    def data(self, seed: int = 0, val_fraction: float | None = None) -> DataConfig:
        return DataConfig(name=self.dataset, image_size=self.image_size, train_subset=self.train_subset,
                          augment=self.augment, seed=seed,
                          val_fraction=self.val_fraction if val_fraction is None else val_fraction,
                          holdout_val=self.holdout_val)

    def train(self, device: str = "auto", seed: int = 0) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, schedule=self.schedule,
                           weight_decay=self.weight_decay, label_smoothing=self.label_smoothing, seed=seed,
                           device=device, nesterov=self.nesterov, max_steps=self.max_steps,
                           milestones=self.milestones)

    def replace(self, **changes: object) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """E.g. "32 px, all 1,438 training images, 10 epochs at batch 64, lr 0.05 one-cycle"."""
        images = "all training images" if self.train_subset is None else f"{self.train_subset:,} training images"
        if self.holdout_val:
            images += f" less {self.val_fraction:.0%} held out as val (the official test split reported at the end)"
        length = f"{self.epochs} epochs" if self.max_steps is None else f"{self.max_steps:,} steps"
        drops = " and ".join(f"{m:,}" for m in self.milestones)
        return (f"{self.image_size} px, {images}, {length} at batch {self.batch_size}, "
                f"lr {self.lr:g} {self.schedule}" + (f" (÷10 at steps {drops})" if drops else "")
                + f", weight decay {self.weight_decay:g}"
                + (f", label smoothing {self.label_smoothing:g}" if self.label_smoothing else "")
                + ("" if self.nesterov else ", plain momentum"))


def model_stride(spec: ModelSpec) -> int:
    """How many input pixels one pixel of the last stage covers: the stem's stride (4 for the ImageNet
    stem's conv + max-pool, 1 for the CIFAR stem) times 2 for every stage after the first."""
    return (4 if spec.stem == "imagenet" else 1) * 2 ** (len(spec.depths) - 1)


def round_to_stride(size: float, spec: ModelSpec, lo: int, hi: int) -> int:
    """``size`` rounded to a multiple of the model's stride (at least two strides, so the last stage
    sees at least 2×2), clamped to [lo, hi]."""
    stride = model_stride(spec)
    rounded = max(2 * stride, stride * round(size / stride))
    return int(min(max(rounded, lo), hi))


# Per built-in dataset, for the CIFAR family (small-image nets): measured with resnet20 on 2 CPU cores.
_SMALL = {
    "digits": dict(image_size=32, train_subset=None, epochs=10, batch_size=64, lr=0.05,
                   why="digits: 8 px upsampled to 32, the size the CIFAR stem was designed for (at 8 px the "
                       "last stage sees 2×2 maps and tops out near 80%); all 1,438 training images, small "
                       "batches for enough steps",
                   budget="resnet20 reached 99.4% with it in the lab's benchmark (97% after two thirds of the "
                          "run); how long it takes here, the queue's estimate says"),
    "shapes": dict(image_size=32, train_subset=3000, epochs=5, batch_size=32, lr=0.05,
                   why="shapes: 3,000 images at 32 px in batches of 32 — enough optimizer steps (470) for "
                       "resnet20 to learn in a short run; batch 128 on 2,000 images leaves it near chance",
                   budget="resnet20 reached 98.9% with it in the lab's benchmark (90% halfway through the run); "
                          "how long it takes here, the queue's estimate says"),
    "mnist": dict(image_size=32, train_subset=10_000, epochs=3, batch_size=64, lr=0.05,
                  why="MNIST: 28 px resized to 32 for the CIFAR stem; 10,000 of the 60,000 images are "
                      "plenty for a short run",
                  budget="not in the lab's benchmark (its files are not shipped); how long it takes here, the "
                         "queue's estimate learns from the first run"),
    "fashion_mnist": dict(image_size=32, train_subset=10_000, epochs=4, batch_size=64, lr=0.05,
                          why="Fashion-MNIST: 28 px up to 32 for the CIFAR stem; 10,000 images, 4 epochs",
                          budget="not in the lab's benchmark (its files are not shipped); how long it takes "
                                 "here, the queue's estimate learns from the first run"),
    "cifar100": dict(image_size=32, train_subset=20_000, epochs=10, batch_size=64, lr=0.05,
                     why="CIFAR-100 at its own 32 px; 100 classes need more images than CIFAR-10's 10: 20,000 of "
                         "the 50,000 (200 a class) keep a CPU run to minutes (use them all on a GPU)",
                     budget="not measured in the lab yet (no internet on its benchmark machine); how long it takes "
                            "here, the queue's estimate learns from the first run"),
    "svhn": dict(image_size=32, train_subset=10_000, epochs=4, batch_size=64, lr=0.05,
                 why="SVHN house-number digits at their own 32 px, never flipped (a mirrored digit is another "
                     "symbol); 10,000 of the 73,257 images",
                 budget="not measured in the lab yet (no internet on its benchmark machine); how long it takes "
                        "here, the queue's estimate learns from the first run"),
    "imagenette": dict(image_size=64, train_subset=None, epochs=10, batch_size=64, lr=0.05,
                       why="Imagenette: real ImageNet photos (160 px) at 64 px for a CPU run, all 9,469 training "
                           "images; a fine-tune from ImageNet weights (Fine-tune page) learns far faster",
                       budget="not measured in the lab yet (no internet on its benchmark machine); how long it "
                              "takes here, the queue's estimate learns from the first run"),
    "cifar10": dict(image_size=32, train_subset=10_000, epochs=8, batch_size=64, lr=0.05,
                    why="CIFAR-10 at its own 32 px; 10,000 of the 50,000 images keep a CPU run to minutes "
                        "(use them all on a GPU)",
                    budget="not in the lab's benchmark (its files are not shipped); how long it takes here, the "
                           "queue's estimate learns from the first run"),
}
_COMMON = dict(schedule="onecycle", weight_decay=5e-4, label_smoothing=0.0, augment=True)


def recipe_for(dataset: str, spec: ModelSpec) -> Recipe:
    """The default recipe for ``dataset`` and ``spec``'s family (CIFAR stem or ImageNet stem).

    Built-in datasets use the table above. A user dataset (``folder:NAME``) trains at the size of its
    images — the median shorter side recorded at import — rounded to the model's stride, at most
    :data:`CPU_MAX_FOLDER_SIZE` px, on all its images. ImageNet-stem models get at least 64 px.
    """
    info = dataset_info(dataset)
    lo, hi = info.min_size, info.max_size
    small = dict(_SMALL.get(info.name, {}))
    if small:
        fields = {**_COMMON, **small}
        size = fields["image_size"]
    else:  # a user dataset
        native = info.native_size
        size = round_to_stride(min(native, CPU_MAX_FOLDER_SIZE), spec, lo, hi)
        shrunk = native > CPU_MAX_FOLDER_SIZE
        flip = "with flips" if info.hflip else "no flips (you said a mirror image may change the label)"
        fields = {**_COMMON, "train_subset": None, "epochs": 10, "batch_size": 32, "lr": 0.05,
                  "why": (f"your images are {native} px (median shorter side)"
                          + (f", shrunk to {size} px for a short run" if shrunk else f", used at {size} px")
                          + f" — a multiple of the model's stride ({model_stride(spec)}); all images, {flip}"),
                  "budget": "depends on your images; the queue estimate learns it from the first run"}
    fields["image_size"] = size
    if spec.stem == "imagenet" and size < 64:
        big = round_to_stride(64, spec, lo, hi)
        fields["why"] = (f"{fields['why']}; an ImageNet-stem model downsamples {model_stride(spec)}×, so it gets "
                         f"{big} px")
        fields["image_size"] = big
        fields["budget"] = ("several times the compute per image of a CIFAR-stem model at this size; how long "
                            "it takes here, the queue's estimate says")
    return Recipe(dataset=info.name, **fields)


RECIPE_NAMES = ("default", "paper", "short")  # what named_recipe offers ("default": recipe_for's short CPU run)
PAPER_STEPS = 64_000  # He et al. 2015 sec. 4.2: "terminate training at 64k iterations"
PAPER_MILESTONES = (32_000, 48_000)  # "divide it by 10 at 32k and 48k iterations"

# He et al. 2015, sec. 4.2, CIFAR-10: "weight decay of 0.0001 and momentum of 0.9 … mini-batch size of 128 … a
# learning rate of 0.1, divide it by 10 at 32k and 48k iterations, and terminate training at 64k iterations, which
# is determined on a 45k/5k train/val split … 4 pixels are padded on each side, and a 32×32 crop is randomly sampled
# from the padded image or its horizontal flip". Where the lab differs: it normalises by the training images'
# per-channel mean and std (the paper subtracts the per-pixel mean); the crop and flip are resnet_lab.data.augment's.
# ResNet-110's warm-up (lr 0.01 for ~400 steps, the paper's 110 layers only) is the experiment's to add.
_PAPER = dict(image_size=32, train_subset=None, epochs=183, batch_size=128, lr=0.1, schedule="step",
              weight_decay=1e-4, label_smoothing=0.0, augment=True, nesterov=False, max_steps=PAPER_STEPS,
              milestones=PAPER_MILESTONES, val_fraction=0.1, holdout_val=True,
              why="He et al. 2015 (sec. 4.2) to the letter: 45k/5k train/val split, batch 128, SGD momentum 0.9, "
                  "weight decay 1e-4, lr 0.1 ÷10 at 32k and 48k steps, 64k steps, pad-4 crop and flip; the "
                  "official 10k test images give the test error (the lab normalises per channel, the paper "
                  "subtracts the per-pixel mean)",
              budget=f"the paper's Table 6: ResNet-20 {100 * TABLE6_ERROR[20]:.2f}% test error … ResNet-110 "
                     f"{100 * TABLE6_ERROR[110]:.2f}%; 64,000 steps at batch "
                     "128 is 8.2 million images a model: hours on a GPU, weeks on a CPU; how long it takes here, "
                     "the queue's estimate says")
_SHORT = dict(image_size=32, train_subset=None, epochs=30, batch_size=512, lr=0.4, schedule="onecycle",
              weight_decay=5e-4, label_smoothing=0.1, augment=True, nesterov=True,
              why="a lesson's CIFAR-10 run: 30 epochs of one-cycle SGD (Nesterov, peak lr 0.4 at batch 512), weight "
                  "decay 5e-4 and label smoothing 0.1 — the short-schedule tricks that buy most of the paper's "
                  "accuracy in a twentieth of its steps; the official test split is the val split",
              budget="GOAL, not yet measured on a GPU: resnet20 at 90% test accuracy or better in a few minutes "
                     "on one GPU; on a CPU, train a subset (hours for all 50,000 images)")
_NAMED = {("paper", "cifar10"): _PAPER, ("short", "cifar10"): _SHORT,
          # CIFAR-100: the same 50k/10k 32-px images with 100 classes; He et al. 2015 report no CIFAR-100 numbers
          ("paper", "cifar100"): {**_PAPER, "budget": "He et al. 2015 report no CIFAR-100 result (the recipe is their "
                                                    "CIFAR-10 one); 64,000 steps at batch 128: hours on a GPU"},
          ("short", "cifar100"): {**_SHORT, "budget": "not measured: CIFAR-100 with 100 classes ends well below "
                                                    "CIFAR-10's accuracy; how long it takes here, the queue's "
                                                    "estimate says"}}


def named_recipe(name: str, dataset: str = "cifar10", spec: ModelSpec | None = None,
                 train_subset: int | None = None) -> Recipe:
    """The recipe ``name`` (one of :data:`RECIPE_NAMES`) for ``dataset``, on ``train_subset`` training images when
    given (None: the recipe's own). ``default`` is :func:`recipe_for` (it needs ``spec``); ``paper`` and ``short``
    exist for CIFAR-10 and CIFAR-100 (the paper's numbers are CIFAR-10's)."""
    if name not in RECIPE_NAMES:
        raise ValueError(f"recipe {name!r} is not known; choose one of {', '.join(RECIPE_NAMES)}")
    if name == "default":
        if spec is None:
            raise ValueError("the default recipe depends on the model: give its spec")
        recipe = recipe_for(dataset, spec)
    else:
        fields = _NAMED.get((name, dataset))
        if fields is None:
            have = sorted(d for n, d in _NAMED if n == name)
            raise ValueError(f"the {name} recipe is for {', '.join(have)}, not {dataset}")
        recipe = Recipe(dataset=dataset, **fields)
    return recipe if train_subset is None else recipe.replace(train_subset=train_subset)
