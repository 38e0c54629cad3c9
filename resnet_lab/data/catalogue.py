"""What the lab can fetch: datasets and ImageNet weights, each with its files, checksums, mirrors and terms.

Every checksum and URL that torchvision knows is read from torchvision's own classes, so they never drift
from what its dataset classes verify (``CIFAR10.tgz_md5``, ``MNIST.resources``, ``SVHN.split_list``,
``Imagenette._ARCHIVES``, ``ResNet18_Weights.IMAGENET1K_V1.url`` …). A checksum is written
``"md5:<hex>"``, ``"sha256:<hex>"`` or ``"sha256-prefix:<hex>"``; the last is torchvision's weights
convention: the file name ``resnet18-f37072fd.pth`` carries the first hex digits of the file's sha256, exactly
what ``torch.hub``'s ``check_hash`` verifies.

Files land in torchvision's own layout, so its classes (``download=False``) read them::

    <data_root>/cifar-10-python.tar.gz   -> <data_root>/cifar-10-batches-py/
    <data_root>/cifar-100-python.tar.gz  -> <data_root>/cifar-100-python/
    <data_root>/MNIST/raw/*.gz           -> <data_root>/MNIST/raw/*-ubyte
    <data_root>/FashionMNIST/raw/*.gz    -> <data_root>/FashionMNIST/raw/*-ubyte
    <data_root>/svhn/{train,test}_32x32.mat
    <data_root>/imagenette2-160.tgz      -> <data_root>/imagenette2-160/{train,val}/
    torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth  (torchvision's weights cache)

``data_root`` defaults to ``$RESNET_LAB_HOME/data``. Downloading is :mod:`resnet_lab.data.fetch`'s work; this
module only describes, and says what to place where when the lab may not download (:func:`describe_missing`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..fmt import format_bytes
from ..paths import data_root as _default_data_root

CHECKSUM = re.compile(r"^(md5|sha256|sha256-prefix):([0-9a-f]+)$")
_HEX_LENGTH = {"md5": 32, "sha256": 64}  # sha256-prefix: 1..64 digits
UNPACK = (None, "tar.gz", "gz")
WEIGHTS_SUBDIR = "<torch-hub>"  # CatalogueEntry.subdir of weights: torch.hub.get_dir()/checkpoints


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name as saved, e.g. "cifar-10-python.tar.gz", "resnet18-f37072fd.pth"
    bytes: int  # its size in bytes, for progress and the free-disk check (the checksum is the authority)
    checksum: str  # "md5:<hex>", "sha256:<hex>" or "sha256-prefix:<hex>" (torchvision weights' file-name hash)
    urls: tuple[str, ...]  # where to get it: the official URL first, then known mirrors
    unpack: str | None  # "tar.gz" (through the safe tar door), "gz" (gunzip to name minus .gz), None (keep as is)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name or self.name.startswith("."):
            raise ValueError(f"RemoteFile.name must be a plain file name, got {self.name!r}")
        if isinstance(self.bytes, bool) or not isinstance(self.bytes, int) or self.bytes < 1:
            raise ValueError(f"RemoteFile.bytes must be a positive integer, got {self.bytes!r}")
        parse_checksum(self.checksum)
        if not self.urls or not all(urlparse(u).scheme in ("http", "https") for u in self.urls):
            raise ValueError(f"RemoteFile {self.name}: needs at least one http(s) URL, got {self.urls!r}")
        if self.unpack not in UNPACK:
            raise ValueError(f"RemoteFile.unpack must be one of {UNPACK}, got {self.unpack!r}")
        if self.unpack == "gz" and not self.name.endswith(".gz"):
            raise ValueError(f"RemoteFile {self.name}: unpack='gz' needs a name ending in .gz")

    @property
    def algorithm(self) -> str:
        """'md5', 'sha256' or 'sha256-prefix'."""
        return parse_checksum(self.checksum)[0]

    @property
    def digest(self) -> str:
        """The expected hex digest (or its prefix), lower case."""
        return parse_checksum(self.checksum)[1]


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # "cifar10", "mnist", "resnet18", ...
    title: str  # human name, "CIFAR-10"
    kind: str  # "dataset" or "weights"
    files: tuple[RemoteFile, ...]  # what is downloaded, in order
    licence: str  # the terms the publisher gives, in a phrase
    citation: str  # whom to cite
    homepage: str  # the publisher's page
    subdir: str = ""  # where the files land under the data root ("" = the root itself); weights: WEIGHTS_SUBDIR
    yields: tuple[str, ...] = ()  # paths (relative to folder()) that exist once fetched: what present() checks

    def total_bytes(self) -> int:
        """Bytes to download for the whole entry (some sizes are approximate: see the catalogue's comments)."""
        return sum(f.bytes for f in self.files)

    def folder(self, data_root: Path | None = None) -> Path:
        """Where the files land, in torchvision's layout: ``<data_root>/<subdir>`` for datasets (``data_root``
        defaults to ``$RESNET_LAB_HOME/data``), ``torch.hub.get_dir()/checkpoints`` for weights (torchvision's
        cache, where :func:`resnet_lab.models.pretrained.weights_path` looks)."""
        if self.kind == "weights":
            import torch.hub

            return Path(torch.hub.get_dir()) / "checkpoints"
        root = Path(data_root) if data_root is not None else _default_data_root()
        return root / self.subdir if self.subdir else root


def parse_checksum(text: str) -> tuple[str, str]:
    """``"md5:<hex>"`` -> ("md5", "<hex>"); ValueError for anything else (unknown algorithm, bad length)."""
    m = CHECKSUM.match(text or "")
    if not m:
        raise ValueError(f"checksum {text!r} is not 'md5:<hex>', 'sha256:<hex>' or 'sha256-prefix:<hex>'")
    algo, digest = m.groups()
    want = _HEX_LENGTH.get(algo)
    if (want is not None and len(digest) != want) or (want is None and not 1 <= len(digest) <= 64):
        raise ValueError(f"checksum {text!r} has {len(digest)} hex digits, which {algo} does not")
    return algo, digest


# ---------------------------------------------------------------------------------------------------
# the catalogue, read from torchvision's classes


_CIFAR_CITATION = ("A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. "
                   "Tech. report, U. Toronto, 2009.")
_CIFAR_LICENCE = "free for research and teaching (no formal licence; cite the tech report)"
_WEIGHTS_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose images have their own terms"
_WEIGHTS_CITATION = ("K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016; "
                     "weights from torchvision (TorchVision maintainers and contributors, 2016).")


def _cifar(cls, name: str, title: str, size: int) -> CatalogueEntry:
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return CatalogueEntry(
        name=name, title=title, kind="dataset",
        files=(RemoteFile(cls.filename, size, f"md5:{cls.tgz_md5}", (cls.url,), "tar.gz"),),
        licence=_CIFAR_LICENCE, citation=_CIFAR_CITATION, homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        subdir="", yields=tuple(f"{cls.base_folder}/{f}" for f in files),
    )


def _idx(cls, name: str, title: str, sizes: dict[str, int], licence: str, citation: str,
         homepage: str) -> CatalogueEntry:
    files = tuple(RemoteFile(gz, sizes[gz], f"md5:{md5}", tuple(m + gz for m in cls.mirrors), "gz")
                  for gz, md5 in cls.resources)
    return CatalogueEntry(name=name, title=title, kind="dataset", files=files, licence=licence, citation=citation,
                          homepage=homepage, subdir=f"{cls.__name__}/raw",
                          yields=tuple(gz[: -len(".gz")] for gz, _ in cls.resources))


def _weights(name: str, title: str, weights) -> CatalogueEntry:
    url = weights.url
    file = os.path.basename(urlparse(url).path)
    prefix = file.rsplit("-", 1)[1].split(".", 1)[0]  # resnet18-f37072fd.pth -> f37072fd (torch.hub's HASH_REGEX)
    size = round(weights.meta["_file_size"] * 2**20)  # APPROXIMATE: torchvision's _file_size is in MiB, 3 decimals
    return CatalogueEntry(
        name=name, title=title, kind="weights",
        files=(RemoteFile(file, size, f"sha256-prefix:{prefix}", (url,), None),),
        licence=_WEIGHTS_LICENCE, citation=_WEIGHTS_CITATION,
        homepage="https://pytorch.org/vision/stable/models/resnet.html", subdir=WEIGHTS_SUBDIR, yields=(file,),
    )


def _build() -> dict[str, CatalogueEntry]:
    from torchvision import datasets as tvd
    from torchvision import models as tvm

    mnist_sizes = {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
                   "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542}
    fashion_sizes = {"train-images-idx3-ubyte.gz": 26421880, "train-labels-idx1-ubyte.gz": 29515,
                     "t10k-images-idx3-ubyte.gz": 4422102, "t10k-labels-idx1-ubyte.gz": 5148}
    svhn_sizes = {"train": 182040794, "test": 64275384}
    nette_url, nette_md5 = tvd.Imagenette._ARCHIVES["160px"]
    nette_file = os.path.basename(urlparse(nette_url).path)  # imagenette2-160.tgz
    nette_folder = nette_file.rsplit(".", 1)[0]  # imagenette2-160, as torchvision's Imagenette(size="160px") reads
    entries = [
        _cifar(tvd.CIFAR10, "cifar10", "CIFAR-10", 170498071),
        _cifar(tvd.CIFAR100, "cifar100", "CIFAR-100", 169001437),
        _idx(tvd.MNIST, "mnist", "MNIST", mnist_sizes, "CC BY-SA 3.0",
             "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-Based Learning Applied to Document Recognition. "
             "Proc. IEEE 86(11), 1998.", "https://yann.lecun.com/exdb/mnist/"),
        _idx(tvd.FashionMNIST, "fashion_mnist", "Fashion-MNIST", fashion_sizes, "MIT",
             "H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
             "Learning Algorithms. arXiv:1708.07747, 2017.", "https://github.com/zalandoresearch/fashion-mnist"),
        CatalogueEntry(
            name="svhn", title="SVHN", kind="dataset",
            files=tuple(RemoteFile(tvd.SVHN.split_list[s][1], svhn_sizes[s], f"md5:{tvd.SVHN.split_list[s][2]}",
                                   (tvd.SVHN.split_list[s][0],), None) for s in ("train", "test")),
            licence="non-commercial use only",
            citation="Y. Netzer, T. Wang, A. Coates, A. Bissacco, B. Wu, A. Y. Ng. Reading Digits in Natural Images "
                     "with Unsupervised Feature Learning. NIPS Workshop on Deep Learning, 2011.",
            homepage="http://ufldl.stanford.edu/housenumbers/", subdir="svhn",
            yields=tuple(tvd.SVHN.split_list[s][1] for s in ("train", "test")),
        ),
        CatalogueEntry(
            name="imagenette", title="Imagenette (160 px)", kind="dataset",
            # APPROXIMATE size: the archive is about 94 MiB; only progress and the disk check use it
            files=(RemoteFile(nette_file, 99_000_000, f"md5:{nette_md5}", (nette_url,), "tar.gz"),),
            licence="Apache 2.0 (fast.ai); the images come from ImageNet, whose own terms apply",
            citation="J. Howard. Imagenette, fast.ai, 2019 (a 10-class subset of ImageNet: O. Russakovsky et al., "
                     "ImageNet Large Scale Visual Recognition Challenge, IJCV 2015).",
            homepage="https://github.com/fastai/imagenette", subdir="",
            yields=(f"{nette_folder}/train", f"{nette_folder}/val"),
        ),
        _weights("resnet18", "ResNet-18 ImageNet weights (torchvision V1)", tvm.ResNet18_Weights.IMAGENET1K_V1),
        _weights("resnet34", "ResNet-34 ImageNet weights (torchvision V1)", tvm.ResNet34_Weights.IMAGENET1K_V1),
        _weights("resnet50", "ResNet-50 ImageNet weights (torchvision V1)", tvm.ResNet50_Weights.IMAGENET1K_V1),
        _weights("resnet50_v2", "ResNet-50 ImageNet weights (torchvision V2)", tvm.ResNet50_Weights.IMAGENET1K_V2),
    ]
    return {e.name: e for e in entries}


CATALOGUE: dict[str, CatalogueEntry] = _build()


def entry(name: str) -> CatalogueEntry:
    """The catalogue entry called ``name``; ValueError listing the known names otherwise."""
    try:
        return CATALOGUE[name]
    except (KeyError, TypeError):
        raise ValueError(f"nothing called {name!r} in the catalogue; known: {', '.join(CATALOGUE)}") from None


def present(name: str, data_root: Path | None = None) -> bool:
    """Whether everything ``name`` yields is already in place (existence only: no hashing, cheap)."""
    e = entry(name)
    folder = e.folder(data_root)
    return all((folder / p).exists() for p in e.yields)


def describe_missing(name: str, data_root: Path | None = None) -> str:
    """What to download from where, and where to put it, when the lab may not download ``name`` itself."""
    e = entry(name)
    folder = e.folder(data_root)
    lines = [f"{e.title} is not in {folder}{os.sep} and this lab may not download it (offline mode).",
             f"Download, on a machine with internet access ({format_bytes(e.total_bytes())} in all):"]
    for f in e.files:
        algo, digest = parse_checksum(f.checksum)
        check = {"md5": f"md5 {digest}", "sha256": f"sha256 {digest}",
                 "sha256-prefix": f"its sha256 starts with {digest}"}[algo]
        mirrors = f" (mirrors: {', '.join(f.urls[1:])})" if len(f.urls) > 1 else ""
        lines.append(f"  {f.urls[0]}{mirrors}; {check}")
    if e.kind == "weights":
        lines.append(f"and put {e.files[0].name} in {folder}{os.sep} — torchvision's own weights cache "
                     "($TORCH_HOME/hub/checkpoints) — then try again.")
    elif any(f.unpack == "tar.gz" for f in e.files):
        names = ", ".join(f.name for f in e.files)
        lines.append(f"and put {names} in {folder}{os.sep}, then extract it there so that "
                     f"{', '.join(str(folder / p) for p in e.yields[:2])}{' …' if len(e.yields) > 2 else ''} exist "
                     "(or run the download again once the lab is online: a verified archive already in place is "
                     "extracted without downloading).")
    elif any(f.unpack == "gz" for f in e.files):
        lines.append(f"and put the .gz files in {folder}{os.sep}, then gunzip them there (giving "
                     f"{', '.join(e.yields)}); the lab also decompresses verified .gz files it finds there.")
    else:
        lines.append(f"and put {', '.join(f.name for f in e.files)} in {folder}{os.sep}, then try again.")
    lines.append(f"Licence: {e.licence}. Cite: {e.citation}")
    return "\n".join(lines)
