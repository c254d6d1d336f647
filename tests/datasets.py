"""Fixture writers: tiny datasets in the exact on-disk layouts of the file-backed sources, with generated images.

Every image is one solid colour, stored in one of several modes and odd sizes (KINDS, SIZES) so that tests know the
pixel value each file must decode to (``expected`` maps a file to (RGB, tolerance)). Each writer takes ``inject``, a
set of names of bad inputs to write on purpose (listed in the writer's docstring), and returns the paths and
configs a test needs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

REFERENCE = Path(__file__).resolve().parent / "data" / "cub_inat" / "transfer_errors.csv"  # the published matrix

# (kind, file extension): how a solid colour is stored
KINDS = (
    ("rgb_jpg", ".jpg"),
    ("grey_png", ".png"),
    ("rgba_png", ".png"),
    ("palette_gif", ".gif"),
    ("cmyk_jpg", ".jpg"),
    ("grey16_png", ".png"),
    ("rgb_bmp", ".bmp"),
    ("la_png", ".png"),
    ("rgb_webp", ".webp"),
    ("grey_pgm", ".pgm"),
    ("rgb_tif", ".TIF"),
)
EXTENSION = dict(KINDS)
SIZES = ((40, 30), (7, 50), (300, 13), (23, 23), (50, 20), (20, 60))
COLOURS = ((200, 40, 40), (40, 160, 60), (50, 70, 210), (230, 200, 30), (120, 40, 150), (20, 180, 190), (240, 120, 20),
           (90, 90, 90), (250, 250, 250), (10, 10, 10))
ALPHA = 128  # alpha of the transparent kinds
JPEG_TOLERANCE = 8


def grey_of(rgb) -> int:
    """The grey level the grey kinds store for a colour (its green channel: simple to predict)."""
    return int(rgb[1])


def save_image(path: Path, kind: str, rgb, size: tuple[int, int]) -> tuple[tuple[int, int, int], int]:
    """Write a solid image of ``kind``; returns the RGB it must decode to and the tolerance (lossy formats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rgb = tuple(int(c) for c in rgb)
    g = grey_of(rgb)
    if kind == "rgb_jpg":
        Image.new("RGB", size, rgb).save(path, "JPEG", quality=95)
        return rgb, JPEG_TOLERANCE
    if kind == "grey_png":
        Image.new("L", size, g).save(path, "PNG")
        return (g, g, g), 0
    if kind == "grey_jpg":
        Image.new("L", size, g).save(path, "JPEG", quality=95)
        return (g, g, g), JPEG_TOLERANCE
    if kind == "rgba_png":
        Image.new("RGBA", size, rgb + (ALPHA,)).save(path, "PNG")
        return tuple(round(c * ALPHA / 255 + 255 * (255 - ALPHA) / 255) for c in rgb), 1
    if kind == "la_png":
        Image.new("LA", size, (g, ALPHA)).save(path, "PNG")
        v = round(g * ALPHA / 255 + 255 * (255 - ALPHA) / 255)
        return (v, v, v), 1
    if kind == "palette_gif":
        img = Image.new("P", size, 0)
        img.putpalette(list(rgb) + [0, 0, 0] * 255)
        img.save(path, "GIF")
        return rgb, 0
    if kind == "cmyk_jpg":
        Image.new("RGB", size, rgb).convert("CMYK").save(path, "JPEG", quality=95)
        return rgb, JPEG_TOLERANCE
    if kind == "grey16_png":
        value = g * 257  # 16-bit grey whose 8-bit value is exactly g
        Image.fromarray(np.full((h, w), value, dtype=np.uint16)).save(path, "PNG")
        return (g, g, g), 0
    if kind == "rgb_bmp":
        Image.new("RGB", size, rgb).save(path, "BMP")
        return rgb, 0
    if kind == "rgb_webp":
        Image.new("RGB", size, rgb).save(path, "WEBP", lossless=True)
        return rgb, 0
    if kind == "grey_pgm":
        Image.new("L", size, g).save(path, "PPM")
        return (g, g, g), 0
    if kind == "rgb_tif":
        Image.new("RGB", size, rgb).save(path, "TIFF")
        return rgb, 0
    raise ValueError(kind)


def corrupt(path: Path) -> None:
    """Overwrite a file with bytes no image decoder accepts (the extension is kept)."""
    path.write_bytes(b"this is not an image\x00\x01\x02" * 8)


def truncate(path: Path) -> None:
    """Cut a file to 60% of its bytes (the header survives, the pixel data does not)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])


def write_big_png(path: Path, rgb, size=(64, 64)) -> None:
    """A noisy PNG large enough that truncating it cuts into the pixel data."""
    rng = np.random.default_rng(0)
    a = np.clip(np.array(rgb)[None, None, :] + rng.integers(-3, 4, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, "PNG")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------------------------ imagefolder

# class -> (order, family); Strigiformes has one class (its task is skipped), Troglodytidae too when refined
IMAGEFOLDER_CLASSES = {
    "mallard": ("Anseriformes", "Anatidae"),
    "wigeon": ("Anseriformes", "Anatidae"),
    "teal": ("Anseriformes", "Anatidae"),
    "crow": ("Passeriformes", "Corvidae"),
    "jay": ("Passeriformes", "Corvidae"),
    "wren": ("Passeriformes", "Troglodytidae"),
    "owl": ("Strigiformes", "Strigidae"),
}


def write_imagefolder(
    root: str | Path, *, classes: dict | None = None, images_per_class: int = 5, split_file: bool = False,
    inject: set | tuple = (), kinds: tuple | None = None,
) -> dict:
    """root/images/<class>/imgNN.<ext> + root/taxonomy.csv (class,order,family) [+ root/split.csv].

    Image i of the k-th class has colour COLOURS[k], kind KINDS[(k + i) % len] and size SIZES[(3k + i) % len].
    With ``split_file`` the last image of each class is listed as test, the others as train.
    inject: missing_folder (taxonomy class "ghost" without a folder), empty_class (class "empty" with no image),
    extra_folder (folder "stray" not in the taxonomy), non_image (notes.txt and a hidden .DS_Store in mallard/),
    corrupt (crow/img00 unreadable), truncated (jay/img01 cut short), empty_level (owl's order is ""),
    split_missing (split.csv lists crow/nope.jpg), split_unlisted (wren/img00 not listed), split_bad_value.
    Returns root, images, taxonomy, split, config (the data.imagefolder section), colours, expected, files, bad.
    """
    root = Path(root)
    images = root / "images"
    classes = dict(IMAGEFOLDER_CLASSES if classes is None else classes)
    kinds = kinds or KINDS
    inject = set(inject)
    out: dict = {"root": root, "images": images, "colours": {}, "expected": {}, "files": {}, "bad": {}}
    rows = [[c, o, f] for c, (o, f) in classes.items()]
    for k, cls in enumerate(classes):
        colour = COLOURS[k % len(COLOURS)]
        out["colours"][cls] = colour
        names = []
        for i in range(images_per_class):
            kind, ext = kinds[(k + i) % len(kinds)]
            name = f"img{i:02d}{ext}"
            path = images / cls / name
            out["expected"][str(path)] = save_image(path, kind, colour, SIZES[(3 * k + i) % len(SIZES)])
            names.append(name)
        out["files"][cls] = names
    if "missing_folder" in inject:
        rows.append(["ghost", "Passeriformes", "Corvidae"])
    if "empty_class" in inject:
        (images / "empty").mkdir(parents=True)
        rows.append(["empty", "Anseriformes", "Anatidae"])
    if "extra_folder" in inject:
        save_image(images / "stray" / "a.png", "rgb_bmp", (1, 2, 3), (20, 20))
    if "non_image" in inject:
        (images / "mallard" / "notes.txt").write_text("field notes")
        (images / "mallard" / ".DS_Store").write_bytes(b"\x00")
        out["bad"]["non_image"] = images / "mallard" / "notes.txt"
    if "corrupt" in inject:
        path = images / "crow" / out["files"]["crow"][0]
        corrupt(path)
        out["bad"]["corrupt"] = path
    if "truncated" in inject:
        path = images / "jay" / "img01.png"
        (images / "jay" / out["files"]["jay"][1]).unlink()
        write_big_png(path, out["colours"]["jay"])
        truncate(path)
        out["files"]["jay"][1] = path.name
        out["bad"]["truncated"] = path
    if "empty_level" in inject:
        for row in rows:
            if row[0] == "owl":
                row[1] = ""
    out["taxonomy"] = _write_csv(root / "taxonomy.csv", ["class", "order", "family"], rows)
    out["split"] = None
    if split_file or {"split_missing", "split_unlisted", "split_bad_value"} & inject:
        lines = []
        for cls, names in out["files"].items():
            for i, name in enumerate(names):
                if "split_unlisted" in inject and cls == "wren" and i == 0:
                    continue
                lines.append([f"{cls}/{name}", "test" if i == len(names) - 1 else "train"])
        if "split_missing" in inject:
            lines.insert(3, ["crow/nope.jpg", "train"])
            out["bad"]["split_missing"] = 5  # the line number (header = line 1)
        if "split_bad_value" in inject:
            lines[2][1] = "validation"
            out["bad"]["split_bad_value"] = 4
        out["split"] = _write_csv(root / "split.csv", ["path", "split"], lines)
    out["config"] = {"root": str(images), "taxonomy": str(out["taxonomy"])}
    if out["split"] is not None:
        out["config"]["split"] = str(out["split"])
    return out


# ------------------------------------------------------------------------------------------------------------- cub

# (classes.txt name, order, family)
CUB_CLASSES = (
    ("001.Black_footed_Albatross", "Procellariiformes", "Diomedeidae"),
    ("002.Laysan_Albatross", "Procellariiformes", "Diomedeidae"),
    ("003.Sooty_Albatross", "Procellariiformes", "Diomedeidae"),
    ("010.Red_winged_Blackbird", "Passeriformes", "Icteridae"),
    ("011.Rusty_Blackbird", "Passeriformes", "Icteridae"),
    ("029.American_Crow", "Passeriformes", "Corvidae"),
    ("030.Fish_Crow", "Passeriformes", "Corvidae"),
    ("036.Northern_Flicker", "Piciformes", "Picidae"),
    ("094.White_breasted_Nuthatch", "Passeriformes", "Sittidae"),
)
CUB_KINDS = (("rgb_jpg", ".jpg"), ("grey_jpg", ".jpg"), ("cmyk_jpg", ".jpg"), ("rgb_jpg", ".jpg"))

# The first five attribute groups of CUB-200-2011's attributes.txt, with their real ids 1-58 (has_breast_pattern is
# 55-58); the fixture's attributes.txt holds only these.
CUB_COLOURS = ("blue", "brown", "iridescent", "purple", "rufous", "grey", "yellow", "olive", "green", "pink", "orange",
               "black", "white", "red", "buff")
CUB_ATTRIBUTE_GROUPS = (
    ("has_bill_shape", ("curved_(up_or_down)", "dagger", "hooked", "needle", "hooked_seabird", "spatulate",
                        "all-purpose", "cone", "specialized")),
    ("has_wing_color", CUB_COLOURS),
    ("has_upperparts_color", CUB_COLOURS),
    ("has_underparts_color", CUB_COLOURS),
    ("has_breast_pattern", ("solid", "spotted", "striped", "multi-colored")),
)
CUB_CERTAINTIES = ("not visible", "guessing", "probably", "definitely")  # certainty ids 1-4
BREAST = CUB_ATTRIBUTE_GROUPS[-1][1]
_SOLID = (("solid", 4),)
# Per class, image by image (even i train, odd i test), the breast-pattern values its annotator marked present, as
# (value, certainty id): () is none, two pairs are several. Classes not listed: every image (BREAST[(k - 1) % 4], 4).
CUB_BREAST = {
    "001.Black_footed_Albatross": (_SOLID, _SOLID, (("spotted", 3),), (("solid", 3),)),
    "002.Laysan_Albatross": (_SOLID, (("solid", 2),), (("solid", 1),), _SOLID),  # image 2: marked, but "not visible"
    "003.Sooty_Albatross": ((("spotted", 4),), (("spotted", 3),), (("solid", 3), ("striped", 3)), ()),
    "010.Red_winged_Blackbird": (_SOLID, _SOLID, (("solid", 3),), (("multi-colored", 3),)),
    "011.Rusty_Blackbird": ((("striped", 4),), (("striped", 4),), (("spotted", 4),),
                            (("striped", 2), ("multi-colored", 1))),
    "029.American_Crow": (_SOLID,) * 4,
    "030.Fish_Crow": (_SOLID,) * 4,
    "036.Northern_Flicker": ((("spotted", 4),), (("spotted", 4),), (("solid", 3),), (("solid", 3),)),
    "094.White_breasted_Nuthatch": (_SOLID, _SOLID, (("multi-colored", 4), ("solid", 4)), _SOLID),
}


def marked_values(marks: tuple, min_certainty: int = 2) -> tuple[str, ...]:
    """The distinct values of an image's marks (see CUB_BREAST) at certainty id >= ``min_certainty``, sorted."""
    return tuple(sorted({value for value, certainty in marks if certainty >= min_certainty}))


def _attribute_lines(ident: int, breast: tuple) -> list[str]:
    """The image_attribute_labels.txt lines of one image: one per attribute of CUB_ATTRIBUTE_GROUPS, in id order.

    The breast pattern follows ``breast``; every other group has one value present (chosen by the image id). Some
    lines carry an extra field after the certainty, as some lines of the real file do.
    """
    lines, attr = [], 0
    for group, values in CUB_ATTRIBUTE_GROUPS:
        if group == "has_breast_pattern":
            marked = dict(breast)
            asked = max(marked.values(), default=1)  # an image with nothing marked: "not visible"
        else:
            marked = {values[ident % len(values)]: 3 + ident % 2}
            asked = 3 + ident % 2
        for value in values:
            attr += 1
            present, certainty = (1, marked[value]) if value in marked else (0, asked)
            time = f"{(ident * 37 + attr * 11) % 400 / 10 + 1.25:.4f}"
            fields = [ident, attr, present, certainty]
            if attr in (29, 58) or (ident, attr) == (1, 55):
                fields.append(0)
            lines.append(" ".join(map(str, fields + [time])))
    return lines


def write_cub(
    root: str | Path, *, classes=CUB_CLASSES, images_per_class: int = 4, inject: set | tuple = (),
    size: tuple[int, int] = (30, 22), attributes: bool = False, attributes_txt: str = "archive",
) -> dict:
    """root/CUB_200_2011/{images/, images.txt, image_class_labels.txt, train_test_split.txt, classes.txt} and
    root/cub_taxonomy.csv (class,order,family). Images alternate train (even i) / test (odd i).

    With ``attributes``, also the attribute files in their real format: root/attributes.txt (next to CUB_200_2011/,
    where the official archive puts it; ``attributes_txt="readme"``: CUB_200_2011/attributes/attributes.txt) with the
    groups of CUB_ATTRIBUTE_GROUPS, CUB_200_2011/attributes/certainties.txt and image_attribute_labels.txt, whose
    breast patterns follow CUB_BREAST.
    inject: split_unknown_id (train_test_split.txt line for image id 99999), label_unknown_id (the same in
    image_class_labels.txt), missing_file (image id 1's file deleted), unlisted_class (the last class left out of the
    taxonomy), empty_level (the first class's order is ""), corrupt (the first training image of 029.American_Crow),
    corrupt_test (every test image of 030.Fish_Crow); with attributes, a line inserted as line 6 of
    image_attribute_labels.txt: attr_unknown_attribute (attribute id 999), attr_unknown_image (image id 99999),
    attr_short_line (three fields), attr_not_integer (is_present "yes"), attr_bad_present (is_present 2),
    attr_unknown_certainty (certainty id 7); attr_names_malformed (attributes.txt line 59 without "::"),
    attr_names_missing / attr_labels_missing (that file not written).
    Returns root (the CUB_200_2011 folder), taxonomy, config (a data.cub200 section), colours, expected, paths
    ({class: {"train": [...], "test": [...]}}), bad ({inject: file or line number}), breast ({image file: its marks,
    as in CUB_BREAST}), attribute_files ({"names", "labels", "certainties": path}).
    """
    inject = set(inject)
    base = Path(root) / "CUB_200_2011"
    out: dict = {"root": base, "colours": {}, "expected": {}, "paths": {}, "bad": {}, "breast": {}}
    images, labels, splits, class_lines, attribute_lines = [], [], [], [], []
    ident = 0
    for k, (cls, _, _) in enumerate(classes, start=1):
        class_lines.append(f"{k} {cls}")
        colour = COLOURS[(k - 1) % len(COLOURS)]
        out["colours"][cls] = colour
        out["paths"][cls] = {"train": [], "test": []}
        short = cls.split(".", 1)[1]
        for i in range(images_per_class):
            ident += 1
            kind, ext = CUB_KINDS[i % len(CUB_KINDS)]
            rel = f"{cls}/{short}_{i:04d}_{ident}{ext}"
            path = base / "images" / rel
            out["expected"][str(path)] = save_image(path, kind, colour, size)
            images.append(f"{ident} {rel}")
            labels.append(f"{ident} {k}")
            is_train = i % 2 == 0
            splits.append(f"{ident} {int(is_train)}")
            out["paths"][cls]["train" if is_train else "test"].append(path)
            marks = CUB_BREAST[cls][i % len(CUB_BREAST[cls])] if cls in CUB_BREAST else ((BREAST[(k - 1) % 4], 4),)
            out["breast"][str(path)] = marks
            attribute_lines += _attribute_lines(ident, marks)
    if "split_unknown_id" in inject:
        splits.insert(2, "99999 1")
    if "label_unknown_id" in inject:
        labels.insert(2, "99999 1")
    if "missing_file" in inject:
        path = base / "images" / images[0].split(" ", 1)[1]
        path.unlink()
        out["bad"]["missing_file"] = path
    if "corrupt" in inject:
        path = out["paths"]["029.American_Crow"]["train"][0]
        corrupt(path)
        out["bad"]["corrupt"] = path
    if "corrupt_test" in inject:
        for path in out["paths"]["030.Fish_Crow"]["test"]:
            corrupt(path)
        out["bad"]["corrupt_test"] = out["paths"]["030.Fish_Crow"]["test"]
    for name, lines in (("images.txt", images), ("image_class_labels.txt", labels),
                        ("train_test_split.txt", splits), ("classes.txt", class_lines)):
        (base / name).write_text("\n".join(lines) + "\n")
    rows = [[c, o, f] for c, o, f in classes]
    if "unlisted_class" in inject:
        rows.pop()
    if "empty_level" in inject:
        rows[0][1] = ""
    out["taxonomy"] = _write_csv(Path(root) / "cub_taxonomy.csv", ["class", "order", "family"], rows)
    out["config"] = {"root": str(base), "taxonomy": str(out["taxonomy"]), "level": "order",
                     "refine": {"Passeriformes": "family"}}
    if attributes:
        _write_cub_attributes(base, attribute_lines, inject, attributes_txt, out)
    return out


def _write_cub_attributes(base: Path, lines: list[str], inject: set, attributes_txt: str, out: dict) -> None:
    """The attribute files of write_cub (see there), with its attr_* injections."""
    folder = base / "attributes"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{group}::{value}" for group, values in CUB_ATTRIBUTE_GROUPS for value in values]
    names_lines = [f"{i} {name}" for i, name in enumerate(names, start=1)]
    if "attr_names_malformed" in inject:
        names_lines.append(f"{len(names) + 1} has_back_color")
        out["bad"]["attr_names_malformed"] = len(names_lines)
    bad_lines = {
        "attr_unknown_attribute": "3 999 0 3 12.5000", "attr_unknown_image": "99999 55 1 4 3.2500",
        "attr_short_line": "3 55 1", "attr_not_integer": "3 55 yes 4 1.0000", "attr_bad_present": "3 55 2 4 1.0000",
        "attr_unknown_certainty": "3 55 1 7 1.0000",
    }
    for name, line in bad_lines.items():
        if name in inject:
            lines = lines[:5] + [line] + lines[5:]
            out["bad"][name] = 6
    files = {
        "names": base.parent / "attributes.txt" if attributes_txt == "archive" else folder / "attributes.txt",
        "labels": folder / "image_attribute_labels.txt",
        "certainties": folder / "certainties.txt",
    }
    contents = {
        "names": names_lines,
        "labels": lines,
        "certainties": [f"{i} {name}" for i, name in enumerate(CUB_CERTAINTIES, start=1)],
    }
    for what, path in files.items():
        if f"attr_{what}_missing" not in inject:
            path.write_text("\n".join(contents[what]) + "\n")
    out["attribute_files"] = files


# ------------------------------------------------------------------------------------------------------------ inat

INAT_LEVELS = ("kingdom", "phylum", "class", "order", "family", "genus")
# order -> (kingdom, phylum, class)
INAT_ORDERS = {
    "Lepidoptera": ("Animalia", "Arthropoda", "Insecta"),
    "Odonata": ("Animalia", "Arthropoda", "Insecta"),
    "Anura": ("Animalia", "Chordata", "Amphibia"),
    "Asterales": ("Plantae", "Tracheophyta", "Magnoliopsida"),
    "Squamata": ("Animalia", "Chordata", "Reptilia"),
}


def inat_categories(orders: dict, per_order: dict | int = 2) -> list[dict]:
    """Categories (id, name, taxonomy fields) with ``per_order`` species in each order."""
    cats = []
    for order, (kingdom, phylum, cls) in orders.items():
        n = per_order if isinstance(per_order, int) else per_order[order]
        for s in range(n):
            genus = f"{order[:4]}genus{s // 2}"
            cats.append({
                "id": len(cats), "name": f"{genus} species{s}", "kingdom": kingdom, "phylum": phylum,
                "class": cls, "order": order, "family": f"{order[:4]}idae", "genus": genus,
            })
    return cats


def write_inat(
    root: str | Path, *, categories: list[dict] | None = None, train_per_class: int = 2, test_per_class: int = 1,
    inject: set | tuple = (), size: tuple[int, int] = (26, 20),
) -> dict:
    """root/inat2018/{train2018.json, val2018.json, train_val2018/<kingdom>/<id>/<n>.jpg}.

    Default categories: INAT_ORDERS with 2 species each, except Squamata with one (its task is skipped).
    inject: unknown_image_id (a val2018.json annotation of image id 999999), missing_level (category 0 without
    "order"), empty_level (category 0's order is ""), separate_categories (taxonomy only in categories.json),
    unlabelled (a training image without annotation).
    Returns root, train, test, categories_file, config (a data.inat2018 section), colours, expected, categories.
    """
    inject = set(inject)
    base = Path(root) / "inat2018"
    if categories is None:
        categories = inat_categories(INAT_ORDERS, {o: (1 if o == "Squamata" else 2) for o in INAT_ORDERS})
    out: dict = {"root": base, "colours": {}, "expected": {}, "categories": categories}
    docs = {"train": {"images": [], "annotations": [], "categories": []},
            "test": {"images": [], "annotations": [], "categories": []}}
    image_id = 0
    for k, cat in enumerate(categories):
        colour = COLOURS[k % len(COLOURS)]
        out["colours"][cat["name"]] = colour
        for split, n in (("train", train_per_class), ("test", test_per_class)):
            for i in range(n):
                image_id += 1
                rel = f"train_val2018/{cat['kingdom']}/{cat['id']}/{split}{i}.jpg"
                out["expected"][str(base / rel)] = save_image(base / rel, "rgb_jpg", colour, size)
                docs[split]["images"].append({"id": image_id, "file_name": rel, "width": size[0], "height": size[1]})
                docs[split]["annotations"].append({"id": image_id, "image_id": image_id, "category_id": cat["id"]})
    cats = [dict(c) for c in categories]
    if "missing_level" in inject:
        del cats[0]["order"]
    if "empty_level" in inject:
        cats[0]["order"] = ""
    if "unknown_image_id" in inject:
        docs["test"]["annotations"].append({"id": 10**6, "image_id": 999999, "category_id": cats[0]["id"]})
    if "unlabelled" in inject:
        image_id += 1
        rel = "train_val2018/Animalia/unlabelled.jpg"
        save_image(base / rel, "rgb_jpg", (0, 0, 0), size)
        docs["train"]["images"].append({"id": image_id, "file_name": rel, "width": size[0], "height": size[1]})
    out["categories_file"] = None
    if "separate_categories" in inject:
        out["categories_file"] = base / "categories.json"
        out["categories_file"].write_text(json.dumps(cats))
        cats = [{"id": c["id"], "name": c["name"]} for c in cats]
    for split in docs:
        docs[split]["categories"] = cats
    out["train"], out["test"] = base / "train2018.json", base / "val2018.json"
    out["train"].write_text(json.dumps(docs["train"]))
    out["test"].write_text(json.dumps(docs["test"]))
    out["config"] = {"root": str(base), "level": "order"}
    if out["categories_file"] is not None:
        out["config"]["categories"] = "categories.json"
    return out


# -------------------------------------------------------------------------------------------------------- cub+inat


def reference_task_names() -> list[str]:
    """The 50 task names of the published CUB+iNat meta-task, e.g. '[cub] icteridae (aves)'."""
    path = REFERENCE
    with open(path, newline="") as fh:
        names = {row["target_task"] for row in csv.DictReader(fh)}
    return sorted(names)


def _parse(name: str) -> tuple[str, str, str]:
    """'[cub] icteridae (aves)' -> ('cub', 'Icteridae', 'Aves')."""
    prefix, rest = name[1:].split("] ", 1)
    group, cls = rest[:-1].split(" (")
    return prefix, group.capitalize(), cls.capitalize()


def write_cub_inat(root: str | Path, images_per_class: int = 3, cub_attributes: bool = False) -> dict:
    """A CUB fixture and an iNat fixture whose tasks are exactly the 50 of the published CUB+iNat meta-task.

    CUB groups ending in -iformes are orders; the others (-idae) are families of Passeriformes. Each task has two
    classes of ``images_per_class`` tiny images (CUB: the official-split flags alternate; iNat: all but one image
    train). Returns cub, inat (the writers' returns), config (a data section with source combined: entries cub =
    cub200 with level order + refine {Passeriformes: family}, inat = inat2018 with level order), tasks (the 50
    expected task names) and reference ({task name: published name}). With ``cub_attributes`` the CUB fixture has the
    attribute files too (write_cub's ``attributes``): each task's two classes then have two different breast patterns.
    """
    root = Path(root)
    cub_classes, orders, reference = [], {}, {}
    plants = {"Magnoliopsida", "Liliopsida"}
    phyla = {"Insecta": "Arthropoda", "Magnoliopsida": "Tracheophyta", "Liliopsida": "Tracheophyta"}
    for published in reference_task_names():
        prefix, group, cls = _parse(published)
        reference[f"{prefix}-{group.lower()}"] = published
        if prefix == "cub":
            order, family = (group, f"{group[:-6]}idae") if group.endswith("iformes") else ("Passeriformes", group)
            for s in range(2):
                cub_classes.append((f"{len(cub_classes) + 1:03d}.{group}_bird_{s}", order, family))
        else:
            orders[group] = ("Plantae" if cls in plants else "Animalia", phyla.get(cls, "Chordata"), cls)
    cub = write_cub(root / "cub", classes=tuple(cub_classes), images_per_class=max(images_per_class, 2),
                    size=(12, 9), attributes=cub_attributes)
    inat = write_inat(root / "inat", categories=inat_categories(orders, 2), train_per_class=images_per_class - 1,
                      test_per_class=1, size=(10, 12))
    config = {
        "source": "combined",
        "seed": 0,
        "resolution": 16,
        "tasks": "all",
        "combined": {"cub": {"source": "cub200", **cub["config"]}, "inat": {"source": "inat2018", **inat["config"]}},
    }
    return {"cub": cub, "inat": inat, "config": config, "tasks": sorted(reference), "reference": reference}


# --------------------------------------------------------------------------------------------------- stanford cars

CAR_MODELS = (
    "AM General Hummer SUV 2000",
    "Aston Martin V8 Vantage Convertible 2012",
    "Aston Martin Virage Coupe 2012",
    "BMW M3 Coupe 2012",
    "BMW X5 SUV 2007",
    "BMW 1 Series Convertible 2012",
    "Land Rover Range Rover SUV 2012",
    "Land Rover LR2 SUV 2012",
    "Tesla Model S Sedan 2012",
)


def _annotations(records: list[tuple[str, int]]) -> np.ndarray:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    arr = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for j, (fname, label) in enumerate(records):
        arr[0, j] = (np.uint8(1), np.uint8(1), np.uint8(10), np.uint8(10), np.uint16(label), fname)
    return arr


def write_stanford_cars(
    root: str | Path, *, models=CAR_MODELS, train_per_class: int = 2, test_per_class: int = 1,
    inject: set | tuple = (), size: tuple[int, int] = (40, 24),
) -> dict:
    """root/stanford_cars/{devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat,
    cars_train/NNNNN.jpg, cars_test/NNNNN.jpg} as torchvision.datasets.StanfordCars reads them.

    Default models: makes AM General (1 model: skipped), Aston Martin (2), BMW (3), Land Rover (2), Tesla (1: skipped).
    inject: bad_class (a training annotation of class 999), missing_image (a test image deleted).
    Returns root (the folder holding stanford_cars/), config (a data.stanford_cars section), colours, expected.
    """
    from scipy.io import savemat

    inject = set(inject)
    root = Path(root)
    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    out: dict = {"root": root, "colours": {}, "expected": {}, "bad": {}}
    records = {"train": [], "test": []}
    for k, model in enumerate(models, start=1):
        colour = COLOURS[(k - 1) % len(COLOURS)]
        out["colours"][model] = colour
        for split, n in (("train", train_per_class), ("test", test_per_class)):
            for _ in range(n):
                fname = f"{len(records[split]) + 1:05d}.jpg"
                path = base / f"cars_{split}" / fname
                out["expected"][str(path)] = save_image(path, "rgb_jpg", colour, size)
                records[split].append((fname, k))
    if "bad_class" in inject:
        records["train"].append(("00001.jpg", 999))
    if "missing_image" in inject:
        path = base / "cars_test" / records["test"][0][0]
        path.unlink()
        out["bad"]["missing_image"] = path
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array([list(models)], dtype=object)})
    savemat(base / "devkit" / "cars_train_annos.mat", {"annotations": _annotations(records["train"])})
    savemat(base / "cars_test_annos_withlabels.mat", {"annotations": _annotations(records["test"])})
    out["config"] = {"root": str(root)}
    return out


def fit_sample_minimums(cfg: dict) -> dict:
    """``cfg`` with the embeddings' sample minimums (``min_samples``) lowered to 1: a fixture holds a few images a
    class where the real dataset holds hundreds, and a task below a minimum stops the plan. Nothing else changes."""
    for section in ("task2vec", "task2vec_mc", "pseudotask"):
        cfg.setdefault("embeddings", {}).setdefault(section, {})["min_samples"] = 1
    return cfg
