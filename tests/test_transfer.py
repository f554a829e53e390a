"""Transfer learning: the offline pretrained model, preprocessing, freezing, heads, features and
the linear probe. Nothing here downloads anything: only the offline source is used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from sklearn.linear_model import LogisticRegression
from torch import nn
from torchvision.transforms.v2 import functional as TF

from course_lib.data import sample_image
from course_lib.shapes import count_parameters
from course_lib.transfer import (
    PENULTIMATE,
    LinearProbe,
    Preprocess,
    balanced_subset,
    discriminative_param_groups,
    extract_features,
    extract_layer_features,
    fit_linear_probe,
    freeze,
    gradual_unfreezing,
    head_name,
    imagenet_classes,
    imagenet_preprocessing,
    load_model,
    recalibrate_batchnorm,
    replace_head,
    split_efficientnet,
    top_k,
    trainable_parameter_names,
    unfreeze,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def pretrained() -> nn.Module:
    """The offline EfficientNet-Lite0; tests that change a model load their own copy."""
    return load_model()


@pytest.fixture
def no_internet(monkeypatch):
    """Make every way of downloading fail loudly."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download something")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


# ---------------------------------------------------------------------------------------------
# the pretrained model and its class names
# ---------------------------------------------------------------------------------------------


def test_offline_model_sees_a_cat_and_an_espresso(no_internet):
    model = load_model()
    assert not model.training
    preprocess = imagenet_preprocessing()
    images = torch.cat([preprocess(sample_image("chelsea")), preprocess(sample_image("coffee"))])
    cat, coffee = top_k(model, images, k=3)
    assert cat[0][0] in CAT_CLASSES
    assert sum(p for name, p in cat if name in CAT_CLASSES) > 0.5
    assert coffee[0][0] in {"espresso", "cup", "coffee mug"}


def test_wrong_normalisation_mismatches_the_first_batchnorm_statistics(pretrained):
    # The network was trained on pixels scaled to about [-1, 1]: with that scaling the stem's
    # outputs on natural images have roughly the variance its batch norm recorded in training,
    # with ImageNet's usual mean/std (a ~2.2x larger scale) about five times more.
    images = [sample_image(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    imagenet = Preprocess(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

    def log_variance_ratio(preprocess: Preprocess) -> float:
        x = torch.cat([preprocess(image) for image in images])
        with torch.no_grad():
            y = pretrained._conv_stem(x)
        ratio = y.var(dim=(0, 2, 3)) / pretrained._bn0.running_var
        return float(ratio[pretrained._bn0.running_var > 1e-3].log().median())

    assert abs(log_variance_ratio(imagenet_preprocessing())) < 0.5
    assert log_variance_ratio(imagenet) > 1.0


def test_imagenet_classes_are_the_1000_names():
    names = imagenet_classes()
    assert isinstance(names, tuple) and len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[285] == "Egyptian cat" and names[967] == "espresso"


def test_random_weights_give_a_different_network_of_the_same_shape(pretrained):
    torch.manual_seed(0)
    random = load_model(pretrained=False)
    assert count_parameters(random) == count_parameters(pretrained)
    assert not torch.equal(random._fc.weight, pretrained._fc.weight)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"source": "internet"}, ValueError, "source must be one of 'offline', 'torchvision'"),
        ({"arch": "resnet18"}, ValueError, "arch (for source='offline') must be one of"),
        ({"pretrained": "yes"}, TypeError, "pretrained must be True or False"),
    ],
)
def test_load_model_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_model(**kwargs)


# ---------------------------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------------------------


def test_preprocess_matches_torchvision_resize_crop_normalize():
    image = sample_image("chelsea")  # (3, 300, 451): not square
    preprocess = imagenet_preprocessing(image_size=224)
    assert preprocess.resize_size == 256
    got = preprocess(image)
    expected = TF.resize(image, [256], antialias=True)
    expected = TF.center_crop(expected, [224, 224])
    expected = TF.normalize(expected, mean=[127 / 255] * 3, std=[128 / 255] * 3)
    assert got.shape == (1, 3, 224, 224)
    torch.testing.assert_close(got[0], expected, atol=1e-5, rtol=0)


def test_preprocess_grey_batch_without_crop():
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    preprocess = imagenet_preprocessing(image_size=64, center_crop=False)
    out = preprocess(images)
    assert out.shape == (4, 3, 64, 64)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    resized = nn.functional.interpolate(
        images, size=(64, 64), mode="bilinear", align_corners=False, antialias=True
    )
    torch.testing.assert_close(out[:, :1], (resized - 127 / 255) / (128 / 255))


def test_preprocess_normalisation_values():
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    out = Preprocess(image_size=8, resize_size=None, mean=mean, std=std)(torch.full((3, 8, 8), 0.6))
    expected = torch.tensor([(0.6 - m) / s for m, s in zip(mean, std, strict=True)])
    torch.testing.assert_close(out[0, :, 0, 0], expected)
    # white and black map to about +1 and -1 with the EfficientNet-Lite scaling
    lite = imagenet_preprocessing(image_size=8, center_crop=False)
    ends = lite(torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)]))
    assert ends[0].max() == pytest.approx(-127 / 128) and ends[1].min() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(2, 4, 8, 8), r"expected images with 1 \(grey\) or 3 \(RGB\) channels"),
        (torch.rand(8, 8), r"expected images with 4 dims"),
        (torch.rand(1, 3, 8, 8) * 2 - 1, r"expected pixel values in \[0, 1\].*normalised already"),
        (torch.randint(0, 255, (1, 3, 8, 8)), r"float32 or float64"),
        (np.zeros((3, 8, 8)), r"expected images to be a torch.Tensor, got ndarray"),
    ],
)
def test_preprocess_rejects_bad_images(images, message):
    with pytest.raises((ValueError, TypeError), match=message):
        imagenet_preprocessing(image_size=8)(images)


def test_preprocess_rejects_bad_settings():
    with pytest.raises(ValueError, match="resize_size must be None or an int >= image_size"):
        Preprocess(image_size=224, resize_size=200)
    with pytest.raises(ValueError, match="std must be positive"):
        Preprocess(std=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="mean must have 3 values"):
        Preprocess(mean=(0.5,))


# ---------------------------------------------------------------------------------------------
# top-k
# ---------------------------------------------------------------------------------------------


def test_top_k_is_sorted_and_matches_softmax():
    pretrained = load_model()
    x = imagenet_preprocessing(image_size=64)(torch.rand(2, 3, 80, 70))
    pretrained.train()  # top_k evaluates in eval mode and restores the mode
    result = top_k(pretrained, x, k=4)
    assert pretrained.training
    pretrained.eval()
    with torch.no_grad():
        probs = pretrained(x).softmax(dim=1)
    names = imagenet_classes()
    for row, p in zip(result, probs, strict=True):
        values = [v for _, v in row]
        assert values == sorted(values, reverse=True)
        best = p.topk(4)
        assert [name for name, _ in row] == [names[i] for i in best.indices]
        np.testing.assert_allclose(values, best.values.numpy(), rtol=1e-5)


def test_top_k_rejects_bad_arguments(pretrained):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match="k=1001 is more than the model's 1000 classes"):
        top_k(pretrained, x, k=1001)
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_k(pretrained, x, k=0)
    with pytest.raises(ValueError, match="class_names has 2 names but the model has 1000"):
        top_k(pretrained, x, class_names=["a", "b"])


# ---------------------------------------------------------------------------------------------
# freezing and the head
# ---------------------------------------------------------------------------------------------


def test_freeze_keeps_exactly_the_named_parameters_trainable():
    model = load_model()
    names = freeze(model, "_fc")
    assert names == ["_fc.weight", "_fc.bias"] == trainable_parameter_names(model)
    assert count_parameters(model, trainable_only=True) == 1280 * 1000 + 1000

    names = freeze(model, ["_blocks.15", "_conv_head", "_bn1", "_fc"])
    assert all(n.split(".")[0] in {"_blocks", "_conv_head", "_bn1", "_fc"} for n in names)
    assert all(n.startswith("_blocks.15.") for n in names if n.startswith("_blocks"))
    expected = sum(
        p.numel()
        for part in (model._blocks[15], model._conv_head, model._bn1, model._fc)
        for p in part.parameters()
    )
    assert count_parameters(model, trainable_only=True) == expected
    # "_blocks.1" is a prefix of "_blocks.15" as text, but not as a module name
    assert not any(n.startswith("_blocks.15") for n in freeze(model, "_blocks.1"))

    unfreeze(model)
    assert count_parameters(model, trainable_only=True) == count_parameters(model)


def test_a_training_step_changes_only_the_trainable_parameters():
    torch.manual_seed(0)
    model = load_model()
    replace_head(model, 3)
    freeze(model, ["_blocks.15", "_fc"])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    # an optimiser over *all* parameters, with weight decay: frozen ones have no gradient and
    # are skipped
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model.train()
    x = torch.randn(4, 3, 32, 32)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        trainable = name.startswith(("_blocks.15.", "_fc."))
        assert changed == trainable, name
        assert (p.grad is not None) == trainable, name


def test_discriminative_param_groups_split_head_and_body():
    torch.manual_seed(0)
    model = load_model()
    head = replace_head(model, 4)
    freeze(model, "_fc")  # frozen parameters are kept in the groups, for later unfreezing
    body, top = discriminative_param_groups(model, head_lr=1e-3, body_lr=1e-4)
    assert (body["lr"], top["lr"]) == (1e-4, 1e-3)
    assert [id(p) for p in top["params"]] == [id(head.weight), id(head.bias)]
    assert len(body["params"]) + 2 == len(list(model.parameters()))
    assert {id(p) for p in body["params"]}.isdisjoint(id(p) for p in top["params"])
    # the module of split_efficientnet: its head is "fc"; an explicit name works too
    _, upper = split_efficientnet(model, 15)
    groups = discriminative_param_groups(upper, 1e-3, 1e-3, head="fc")
    assert groups[1]["params"][0] is head.weight
    # a network that is only a head: no empty body group
    only = discriminative_param_groups(nn.Sequential(nn.Linear(3, 2)), 1e-2, 1e-3)
    assert len(only) == 1 and only[0]["lr"] == 1e-2


def test_discriminative_learning_rates_move_the_body_less():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 3))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(discriminative_param_groups(model, head_lr=1e-2, body_lr=1e-4))
    loss = nn.functional.cross_entropy(model(torch.randn(8, 5)), torch.arange(8) % 3)
    loss.backward()
    optimizer.step()
    steps = [
        float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before, strict=True)
    ]
    # Adam's first step moves every weight by about its learning rate
    assert steps[0] == pytest.approx(1e-4, rel=1e-2) and steps[2] == pytest.approx(1e-2, rel=1e-2)


def test_discriminative_param_groups_rejects_bad_arguments():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="body_lr must be a positive number"):
        discriminative_param_groups(model, 1e-3, 0.0)
    with pytest.raises(ValueError, match="head_lr must be a positive number"):
        discriminative_param_groups(model, True, 1e-3)
    with pytest.raises(ValueError, match=r"no module called 'fc' \(its children: 0, 1\)"):
        discriminative_param_groups(model, 1e-3, 1e-4, head="fc")
    with pytest.raises(ValueError, match="the head '1' has no parameters"):
        discriminative_param_groups(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), 1e-3, 1e-4, head="1")


def test_gradual_unfreezing_adds_one_stage_at_a_time():
    torch.manual_seed(0)
    model = load_model()
    replace_head(model, 3)
    _, upper = split_efficientnet(model, 15)
    optimizer = torch.optim.Adam(discriminative_param_groups(upper, 1e-2, 1e-3))
    x = torch.randn(4, 192, 2, 2)
    y = torch.tensor([0, 1, 2, 0])
    stages = ["fc", ["head_conv", "head_norm"], "blocks"]
    seen = []
    for names in gradual_unfreezing(upper, stages):
        seen.append({name.split(".")[0] for name in names})
        before = {name: p.detach().clone() for name, p in upper.named_parameters()}
        upper.train()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(upper(x), y).backward()
        optimizer.step()
        for name, p in upper.named_parameters():
            assert (not torch.equal(p, before[name])) == (name in names), name
    assert seen == [
        {"fc"},
        {"fc", "head_conv", "head_norm"},
        {"fc", "head_conv", "head_norm", "blocks"},
    ]
    assert count_parameters(upper, trainable_only=True) == count_parameters(upper)


def test_gradual_unfreezing_checks_its_stages_before_the_first():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"no parameter of the model is called '2'"):
        gradual_unfreezing(model, ["1", "2"])  # raised at the call, not at stage 2
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(TypeError, match="stages must be a list of stages"):
        gradual_unfreezing(model, "1")
    with pytest.raises(ValueError, match="non-empty list of non-empty stages"):
        gradual_unfreezing(model, ["1", []])
    with pytest.raises(TypeError, match="a stage holds names"):
        gradual_unfreezing(model, [["1", 0]])


def test_freeze_rejects_unknown_names():
    model = load_model()
    with pytest.raises(ValueError, match=r"no parameter of the model is called '_head'.*_fc"):
        freeze(model, "_head")
    with pytest.raises(TypeError, match="trainable must be a name or names"):
        freeze(model, [3])
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.Module, got str"):
        freeze("model", "_fc")


def test_replace_head_gives_the_new_number_of_classes():
    torch.manual_seed(0)
    model = load_model()
    freeze(model)  # everything frozen ...
    head = replace_head(model, 7)
    assert model._fc is head and head_name(model) == "_fc"
    assert (head.in_features, head.out_features) == (1280, 7)
    assert trainable_parameter_names(model) == ["_fc.weight", "_fc.bias"]  # ... but the new head
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


@pytest.mark.parametrize(
    ("builder", "name"),
    [(torchvision.models.resnet18, "fc"), (torchvision.models.mobilenet_v3_small, "classifier.3")],
)
def test_head_of_torchvision_models(builder, name):
    model = builder(weights=None).double()
    assert head_name(model) == name
    head = replace_head(model, 5)
    assert model.get_submodule(name) is head and head.weight.dtype == torch.float64
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64, dtype=torch.float64)).shape == (1, 5)


def test_replace_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        replace_head(nn.Linear(3, 2), 0)
    with pytest.raises(ValueError, match=r"has no nn\.Linear layer to use as its head"):
        replace_head(nn.Conv2d(3, 2, 1), 3)


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


def test_penultimate_features_in_batches(pretrained):
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    preprocess = imagenet_preprocessing(image_size=32, center_crop=False)
    features = extract_features(pretrained, images, transform=preprocess, batch_size=2)
    assert features.shape == (5, 1280)
    with torch.no_grad():
        maps = pretrained.extract_features(preprocess(images))
    torch.testing.assert_close(features, maps.mean(dim=(2, 3)), atol=1e-5, rtol=1e-5)
    # the logits are the head applied to these features
    with torch.no_grad():
        torch.testing.assert_close(
            pretrained._fc(features), pretrained(preprocess(images)), atol=1e-4, rtol=1e-4
        )


def test_layer_features_pooling_and_maps():
    pretrained = load_model()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    pretrained.train()
    out = extract_layer_features(
        pretrained, x, ["_blocks.0", "_blocks.14", PENULTIMATE], pool_size=2
    )
    assert pretrained.training  # mode restored
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in pretrained.modules())
    assert out["_blocks.0"].shape == (3, 16 * 4)
    assert out["_blocks.14"].shape == (3, 192 * 4)
    assert out[PENULTIMATE].shape == (3, 1280)
    maps = extract_layer_features(pretrained, x, ["_blocks.14"], pool_size=None, batch_size=2)
    assert maps["_blocks.14"].shape == (3, 192, 2, 2)  # 64 / 32 = 2
    # a 2x2 map pooled to 2x2 is the same map, flattened
    torch.testing.assert_close(
        maps["_blocks.14"].flatten(1), out["_blocks.14"], atol=1e-4, rtol=1e-4
    )
    # a pool size per layer: the map of one layer, pooled features of the others (default 1)
    mixed = extract_layer_features(
        pretrained,
        x,
        ["_blocks.0", "_blocks.14", PENULTIMATE],
        pool_size={"_blocks.14": None},
        batch_size=2,  # as for maps: another batch size sums in another order
    )
    assert mixed["_blocks.0"].shape == (3, 16)
    torch.testing.assert_close(mixed["_blocks.14"], maps["_blocks.14"], atol=1e-5, rtol=1e-5)
    assert mixed[PENULTIMATE].shape == (3, 1280)


def test_feature_extraction_rejects_bad_arguments(pretrained):
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"no layer called '_block.3'.*_conv_stem"):
        extract_layer_features(pretrained, x, ["_block.3"])
    with pytest.raises(TypeError, match="layers must be a list of names"):
        extract_layer_features(pretrained, x, "_blocks.3")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        extract_features(pretrained, x, batch_size=0)
    with pytest.raises(ValueError, match="pool_size must be None or a positive int"):
        extract_layer_features(pretrained, x, ["_blocks.3"], pool_size=0)
    with pytest.raises(ValueError, match="pool_size must be None or a positive int"):
        extract_layer_features(pretrained, x, ["_blocks.3"], pool_size={"_blocks.3": 0})
    with pytest.raises(ValueError, match=r"pool_size names layers that are not in layers"):
        extract_layer_features(pretrained, x, ["_blocks.3"], pool_size={"_blocks.4": 2})
    with pytest.raises(ValueError, match=r"expected images with 4 dims \(N, C, H, W\)"):
        extract_features(pretrained, torch.zeros(3, 32, 32))


# ---------------------------------------------------------------------------------------------
# the linear probe and few-shot subsets
# ---------------------------------------------------------------------------------------------


def test_linear_probe_matches_scikit_learn_logistic_regression():
    gen = torch.Generator().manual_seed(3)
    n, d, k = 120, 6, 3
    y = torch.arange(n) % k
    centres = torch.randn(k, d, generator=gen, dtype=torch.float64)
    features = centres[y] + 1.5 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    features = features * torch.linspace(0.1, 10.0, d, dtype=torch.float64)  # unequal scales
    weight_decay = 0.05
    probe = fit_linear_probe(features, y, weight_decay=weight_decay, max_iter=500)
    assert isinstance(probe, LinearProbe)

    z = ((features - features.mean(0)) / features.std(0, unbiased=False)).numpy()
    # scikit-learn minimises C·Σ loss + ½‖W‖², i.e. mean loss + ‖W‖²/(2·C·n)
    reference = LogisticRegression(C=1.0 / (weight_decay * n), tol=1e-10, max_iter=10_000)
    reference.fit(z, y.numpy())
    with torch.no_grad():
        probs = probe(features).softmax(dim=1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(z), atol=1e-4)
    assert torch.equal(probe.predict(features), torch.from_numpy(reference.predict(z)))


def test_linear_probe_separates_separable_data_and_checks_inputs():
    features = torch.tensor([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
    labels = torch.tensor([0, 0, 1, 1])
    probe = fit_linear_probe(features, labels, weight_decay=1e-3)
    assert torch.equal(probe.predict(features), labels)
    with pytest.raises(ValueError, match="expected features with 2 columns"):
        probe(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="features has 4 rows but labels has 3 entries"):
        fit_linear_probe(features, labels[:3])
    with pytest.raises(TypeError, match=r"expected integer class labels, got dtype torch\.float32"):
        fit_linear_probe(features, labels.float())
    with pytest.raises(ValueError, match="labels must be < num_classes=2, got 2"):
        fit_linear_probe(features, torch.tensor([0, 1, 2, 0]), num_classes=2)
    with pytest.raises(ValueError, match=r"expected features with 2 dims \(N, D\)"):
        fit_linear_probe(features[0], labels)


def test_balanced_subset_is_balanced_and_nested():
    labels = torch.arange(100) % 4
    small = balanced_subset(labels, 3, seed=5)
    large = balanced_subset(labels, 10, seed=5)
    assert torch.bincount(labels[small]).tolist() == [3, 3, 3, 3]
    assert torch.bincount(labels[large]).tolist() == [10] * 4
    assert set(small.tolist()) <= set(large.tolist())
    assert not torch.equal(balanced_subset(labels, 10, seed=6), large)
    with pytest.raises(ValueError, match="class 0 has only 25 examples, fewer than per_class=26"):
        balanced_subset(labels, 26)
    with pytest.raises(ValueError, match="per_class must be a positive int"):
        balanced_subset(labels, 0)


# ---------------------------------------------------------------------------------------------
# batch normalisation and the EfficientNet split
# ---------------------------------------------------------------------------------------------


def test_recalibrate_batchnorm_uses_the_statistics_of_the_new_images():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, bias=False)
    model = nn.Sequential(conv, nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    weights = conv.weight.detach().clone()
    images = 3.0 + 2.0 * torch.randn(12, 1, 6, 6)
    recalibrate_batchnorm(model, images, batch_size=4)
    assert not model.training and model[1].momentum == 0.1
    with torch.no_grad():
        y = conv(images)
    torch.testing.assert_close(model[1].running_mean, y.mean(dim=(0, 2, 3)))
    # the running variance averages the (unbiased) variances of the three batches
    expected_var = torch.stack([b.var(dim=(0, 2, 3)) for b in y.split(4)]).mean(0)
    torch.testing.assert_close(model[1].running_var, expected_var)
    assert torch.equal(conv.weight, weights)
    with pytest.raises(ValueError, match="has no batch-normalisation layer"):
        recalibrate_batchnorm(nn.Linear(2, 2), images)


def test_split_efficientnet_composes_to_the_whole_model(pretrained):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    bottom, top = split_efficientnet(pretrained, 15)
    with torch.no_grad():
        middle = bottom(x)
        assert middle.shape == (2, 192, 2, 2)
        torch.testing.assert_close(top(middle), pretrained(x), atol=1e-5, rtol=1e-5)
    assert top.fc is pretrained._fc  # shared, not copied
    with pytest.raises(ValueError, match=r"block must be an int in 0\.\.16, got 17"):
        split_efficientnet(pretrained, 17)
    with pytest.raises(TypeError, match="expected an EfficientNet"):
        split_efficientnet(torchvision.models.resnet18(weights=None), 2)
