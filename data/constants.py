"""Dataset constants: per-channel normalization, class names and asymmetric-noise maps.

The one place these numbers live. Mean and std are per channel, in [0, 1] pixel units (after
dividing uint8 pixels by 255), over each dataset's training split.
"""

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
# kuangliu/pytorch-cifar's CIFAR-10 constants, which dbViz (Somepalli et al. 2022) and Li et al.
# 2025 use: the train-split mean, but a std that is not the per-channel pixel std (about 0.8x it).
PYTORCH_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
PYTORCH_CIFAR_STD = (0.2023, 0.1994, 0.2010)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
SVHN_MEAN = (0.4377, 0.4438, 0.4728)
SVHN_STD = (0.1980, 0.2010, 0.1970)

# The `normalize` option of the CIFAR sources: name -> (mean, std). `train_split` is the dataset's
# own statistics (the default); `pytorch_cifar` the constants above, for CIFAR-100 too, as the forks
# of that repository apply them.
CIFAR_NORMALIZATIONS = {
    "cifar10": {"train_split": (CIFAR10_MEAN, CIFAR10_STD), "pytorch_cifar": (PYTORCH_CIFAR_MEAN, PYTORCH_CIFAR_STD)},
    "cifar100": {"train_split": (CIFAR100_MEAN, CIFAR100_STD), "pytorch_cifar": (PYTORCH_CIFAR_MEAN, PYTORCH_CIFAR_STD)},
}

DIGIT_NAMES = tuple(str(d) for d in range(10))

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

# Fine labels, in the order of `fine_label_names` in cifar-100-python/meta.
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)

MNIST_CLASSES = DIGIT_NAMES
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# SVHN stores digit 0 as label 10; loaders map it to 0, so class i is digit i.
SVHN_CLASSES = DIGIT_NAMES


def _pairs(classes: tuple[str, ...], named: dict[str, str]) -> dict[int, int]:
    return {classes.index(src): classes.index(dst) for src, dst in named.items()}


# Asymmetric label noise (METHODS.md): source class -> target class, applied simultaneously.
CIFAR10_ASYMMETRIC_PAIRS = _pairs(CIFAR10_CLASSES, {
    "truck": "automobile", "bird": "airplane", "cat": "dog", "dog": "cat", "deer": "horse",
})  # {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}

# MNIST map of Patrini et al. 2017 ("Making deep neural networks robust to label noise"):
# 2->7, 3->8, 5<->6, 7->1.
MNIST_ASYMMETRIC_PAIRS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}

# Per dataset name, the map a config may default to (callers pass it as `pairs=`).
ASYMMETRIC_PAIRS = {"cifar10": CIFAR10_ASYMMETRIC_PAIRS, "mnist": MNIST_ASYMMETRIC_PAIRS}
