"""The model card (MODEL_CARD.md): every figure read from report.json, the int8 sidecar and train_report.json.

No figure about the model, its data or its accuracy is typed here: the prose is fixed, the figures are read.
"""

from __future__ import annotations

import json
from pathlib import Path

from convert.evaluate import balance_section, microsoft_section
from convert.labelsets import TITLES, TRAINED_ON_TITLES, ferplus_note, label_set_table, side_by_side_table

CARD_FILE = "MODEL_CARD.md"
CONFUSION_PNG = "confusion_int8.png"
SPLIT_ROLES = {
    "Training": "training (augmented)",
    "PublicTest": "validation: model selection",
    "PrivateTest": "test: the reported figures",
}


def percent(fraction: float) -> str:
    return f"{fraction * 100:.2f}%"


def score(value: float) -> str:
    """F1, precision and recall: a fraction shown with 3 decimals."""
    return f"{value:.3f}"


def size(num_bytes: int) -> str:
    return f"{num_bytes:,} bytes ({num_bytes / 1024:.1f} KiB)"


def plus(zero_point: int) -> str:
    """'+ 3', '- 128': adding a zero point without a '+ -' in the text."""
    return f"{'-' if zero_point < 0 else '+'} {abs(zero_point)}"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def model_details(report: dict, sidecar: dict) -> list[str]:
    contract = sidecar["contract"]
    quant = {end: sidecar.get(f"{end}_quantization") for end in ("input", "output")}
    quant_text = {
        end: f"scale {q['scale']:.6g}, zero point {q['zero_point']}" if q else "not quantized"
        for end, q in quant.items()
    }
    shape = "x".join(str(d) for d in contract["input_shape"])
    lines = [
        "## Model details",
        "",
        f"- **Model:** `{report['int8_model']}`, a mini-Xception convolutional network (depthwise-separable "
        f"residual blocks, global average pooling), converted from `{report['keras_model']}`.",
        f"- **Task:** classify one {shape} {contract['color']} face crop into {len(sidecar['labels'])} expression "
        f"labels: {', '.join(sidecar['labels'])} (output index order).",
        f"- **Parameters:** {report['parameters']:,}.",
        f"- **sha256 (int8 file):** `{sidecar['sha256']}`.",
        "- **int8 scheme:** post-training full-integer quantization (int8 weights and activations, int8 input "
        f"and output tensors, no float ops), calibrated on {report['config']['calibration_count']:,} class-balanced "
        "Training faces" + (" and their mirror images" if contract["flip_tta"] else "")
        + (f"; each separable convolution equalized first (strength {sidecar['equalize']:g}, the same function in float)"
           if sidecar.get("equalize") else "") + ".",
        f"  Input: {quant_text['input']}. Output: {quant_text['output']}.",
        f"- **Interpreter:** figures measured with {report['evaluated_with']}, through the runtime's own "
        "`EmotionModel`. The runtime uses ai-edge-litert, else tflite-runtime, else TensorFlow.",
        "",
        "File sizes:",
        "",
    ]
    return lines + table(["model", "size"], [[name, size(n)] for name, n in report["sizes_bytes"].items()])


def intended_use() -> list[str]:
    return [
        "## Intended use",
        "",
        "- Research and teaching on facial-expression recognition and on-device quantization.",
        "- Prototyping and human-computer interaction studies with informed, consenting participants.",
        "- Aggregate, anonymous signals (e.g. the share of smiling faces at an exhibit) where people are told.",
        "",
        "## Out-of-scope uses",
        "",
        "- Decisions about an individual: hiring, grading, policing, credit, insurance, medical diagnosis.",
        "- Covert surveillance, or any use on people who have not been told.",
        "- Workplaces and education: the EU AI Act, Art. 5(1)(f), prohibits emotion recognition there "
        "except for medical or safety reasons.",
        "- Children: they are not a population the training data was built for, nor one this model was checked on.",
        "- Inferring anyone's inner state, intent, honesty or personality (see the caveat below).",
    ]


def class_counts(report: dict) -> dict[str, dict[str, int]]:
    """Faces per class of each split: report["class_counts"] where present (per split, a list in label order as
    train.data's Fer2013.class_counts() gives, or a dict), else the support in the Keras results."""
    counts = {}
    for split, row in report.get("class_counts", {}).items():
        counts[split] = dict(row) if isinstance(row, dict) else dict(zip(report["labels"], row, strict=True))
    for split, metrics in report["results"]["keras"].items():
        counts.setdefault(split, {label: m["support"] for label, m in metrics["per_class"].items()})
    return counts


def training_data(report: dict, train_report: dict | None) -> list[str]:
    splits = report["split_sizes"]
    lines = [
        "## Training data",
        "",
        "FER2013 (Goodfellow et al., 2013, the ICML representation-learning challenge): grey face crops found by "
        "web image search and labelled with one of the expressions above. Its own three splits are used as is.",
        "",
    ]
    lines += table(
        ["split", "images", "role"], [[name, f"{n:,}", SPLIT_ROLES.get(name, "")] for name, n in splits.items()]
    )
    lines += ferplus_training(report, train_report)
    limit = report["config"].get("limit", 0)
    if limit:
        lines += [
            "",
            f"**Smoke run:** evaluated on at most {limit:,} faces per split; the figures below are not "
            "representative of the full test split.",
        ]
    counts = class_counts(report)
    lines += ["", "Faces per class (FER2013 labels):", ""]
    lines += table(
        ["class", *counts], [[label, *(f"{c[label]:,}" for c in counts.values())] for label in report["labels"]]
    )
    if "class_counts" not in report or "Training" not in report["class_counts"]:
        lines += ["", "Per-class counts of Training are not in the report; its size is above."]
    if train_report is not None:
        config = train_report["config"]
        soup = train_report.get("soup")
        runs = f"Training (each of the {len(soup['ingredients'])} runs averaged, as the first): " if soup else "Training: "
        lines += [
            "",
            f"{runs}{train_report['epochs_run']} epochs run, best at epoch {train_report['best_epoch']} "
            f"(selection: {train_report['selected_on']}); batch {config['batch_size']}, learning rate "
            f"{config['learning_rate']:g}, L2 {config['l2']:g}, label smoothing {config['label_smoothing']:g}, seed "
            f"{config['seed']}. Augmentation: rotation up to {config['rotation_degrees']:g} degrees, shift up to "
            f"{config['shift_fraction']:g} and zoom up to {config['zoom_fraction']:g} of the side, brightness "
            f"{config['brightness']:g}, contrast {config['contrast']:g}"
            + (", horizontal flips." if config["flip"] else ", no flips."),
        ]
        if config.get("init_from"):
            lines += ["", f"This run started from the weights of `{config['init_from']}` (a warm restart)."]
        if train_report.get("stages"):
            lines += ["", f"Stages: {train_report['stages']}."]
    else:
        lines += ["", "No train_report.json for this model beside it, so training details are left out."]
    return lines


def ferplus_training(report: dict, train_report: dict | None) -> list[str]:
    """How a model trained on FER+ votes used them; nothing for a model trained on FER2013's labels."""
    if report.get("trained_on", "fer2013") != "ferplus":
        return []
    if train_report and "train_images" in train_report:
        used = f": {train_report['train_images']:,} of the {report['split_sizes']['Training']:,} Training faces were trained on"
    else:
        used = " (how many is in train_report.json, which is not beside this model)"
    return [
        "",
        "**Labels: FER+ votes.** Each face was re-labelled by 10 annotators (FER+, Barsoum et al., 2016, "
        "microsoft/FERPlus, `fer2013new.csv`, row-aligned with `fer2013.csv`). The model was trained on the vote "
        "distribution over the 7 labels above (soft targets). FER+'s eighth emotion, contempt, is not among the "
        "runtime's labels: its votes are left out and the other emotions' renormalised. Faces whose most-voted class "
        f"is unknown, not-a-face or contempt were dropped{used}.",
    ]


def side_by_side(report: dict) -> list[str]:
    """The int8 model as the runtime runs it on both label sets, accuracy and balanced accuracy side by side."""
    rows = side_by_side_table(report)
    return ["Accuracy and balanced accuracy on both label sets side by side, int8 as the runtime runs it:", "", *rows, ""] if rows else []


def evaluation(report: dict) -> list[str]:
    results = report["results"]
    judged_by = TITLES[report.get("judged_by", "fer2013")]
    lines = ["## Evaluation", "", privatetest_summary(report), ""]
    if "accuracy_by_label_set" in report:
        lines += [
            "### Both label sets",
            "",
            "Accuracy against FER2013's own labels and against the FER+ majority, without and with flip averaging:",
            "",
            *label_set_table(report),
            "",
            ferplus_note(report),
            "",
            *side_by_side(report),
        ]
    lines += [f"### Overall (against the {judged_by}, as the gate judges it)", ""]
    rows = []
    for name, splits in results.items():
        for split, metrics in splits.items():
            rows.append([name, split, percent(metrics["accuracy"]), percent(metrics["balanced_accuracy"]), score(metrics["macro_f1"])])
    lines += table(["model", "split", "accuracy", "balanced accuracy", "macro-F1"], rows)
    lines += ["", *balance_section(report), *microsoft_section(report), *ckplus_section(report)]
    return lines + float_versus_int8(report) + gate_line(report["gate"]) + per_class_tables(results["int8"]["PrivateTest"])


def privatetest_summary(report: dict) -> str:
    """int8 on PrivateTest in one paragraph: its figures, what chose the model, the test-time averaging."""
    int8, flip = report["results"]["int8"]["PrivateTest"], report["flip_tta"]
    counted = sum(m["support"] for m in int8["per_class"].values())
    return (
        f"int8 on PrivateTest against the {TITLES[report.get('judged_by', 'fer2013')]} ({counted:,} faces): accuracy "
        f"{percent(int8['accuracy'])}, balanced accuracy {percent(int8['balanced_accuracy'])} (mean per-class recall), "
        f"macro-F1 {score(int8['macro_f1'])}. "
        "The model was selected on PublicTest; PrivateTest was not used for any choice. "
        + (
            "Every prediction averages the face with its mirror image (flip test-time averaging), as "
            "the runtime does by default."
            if flip
            else "No flip test-time averaging, as in the runtime."
        )
        + (
            f" Every figure on this card also averages each face over four copies shifted {report['shift_tta']} "
            "pixels (right, left, down, up), as the runtime does for this model: five times the classifier's cost."
            if report.get("shift_tta")
            else ""
        )
    )


def float_versus_int8(report: dict) -> list[str]:
    """Each variant's PrivateTest accuracy and file size against the Keras model's, and their top-1 agreement."""
    results = report["results"]
    lines = ["", "### Float vs int8 (PrivateTest)", ""]
    reference = results["keras"]["PrivateTest"]["accuracy"]
    rows = []
    for name, splits in results.items():
        metrics = splits["PrivateTest"]
        change = f"{(metrics['accuracy'] - reference) * 100:+.2f}" if name != "keras" else "reference"
        file_size = size(report["sizes_bytes"][name]) if name in report["sizes_bytes"] else ""
        rows.append([name, file_size, percent(metrics["accuracy"]), score(metrics["macro_f1"]), change])
    lines += table(["model", "file size", "accuracy", "macro-F1", "accuracy vs Keras (points)"], rows)
    return lines + ["", f"Top-1 agreement of float (Keras) and int8 on PrivateTest: {percent(report['agreement_privatetest'])}."]


def gate_line(gate: dict) -> list[str]:
    verdict = "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["failures"])
    min_accuracy = "none" if gate["min_accuracy"] is None else f"{gate['min_accuracy']:.2f}%"
    return [
        "",
        f"Accuracy gate (int8 at most {gate['max_drop']:g} percentage points below float on PrivateTest, minimum "
        f"accuracy {min_accuracy}): {verdict}.",
    ]


def per_class_tables(int8: dict) -> list[str]:
    """int8's PrivateTest per-class table and confusion matrix (rows true, columns predicted), and the figure's link."""
    lines = ["", "### Per class (int8, PrivateTest)", ""]
    lines += table(
        ["class", "precision", "recall", "F1", "support"],
        [
            [label, score(m["precision"]), score(m["recall"]), score(m["f1"]), f"{m['support']:,}"]
            for label, m in int8["per_class"].items()
        ],
    )
    lines += ["", "### Confusion matrix (int8, PrivateTest; rows true, columns predicted)", ""]
    labels = list(int8["per_class"])
    lines += table(
        ["true \\ predicted", *labels], [[t, *row] for t, row in zip(labels, int8["confusion_matrix"], strict=True)]
    )
    return lines + ["", f"![Row-normalised confusion matrix, int8 on PrivateTest]({CONFUSION_PNG})"]


def ckplus_section(report: dict) -> list[str]:
    """int8 on CK+48 (posed faces from another lab), when convert was given it: a check, never a choice."""
    ck = report.get("ckplus48")
    if not ck:
        return []
    recall = ", ".join(f"{name} {value:.2f}" for name, value in ck["recall"].items())
    return [
        "### CK+48 (posed faces from another lab; evaluation only)",
        "",
        f"`edge eval --crops` on {ck['images']:,} CK+48 faces (contempt skipped; no neutral faces, so balanced accuracy "
        f"and macro-F1 average the {len(ck['classes_averaged'])} classes present), with this model's sidecar settings: "
        f"accuracy {percent(ck['accuracy'])}, balanced accuracy {percent(ck['balanced_accuracy'])}, macro-F1 "
        f"{score(ck['macro_f1'])}. Recall: {recall}. About 327 independent faces (three frames a sequence): a point is "
        "about 3 faces. Never trained on, never used to choose a checkpoint, recipe or setting.",
        "",
    ]


def preprocessing(sidecar: dict) -> list[str]:
    contract = sidecar["contract"]
    scale, offset = contract["pixel_scale"], contract["pixel_offset"]
    high = 255 * scale + offset
    quant = sidecar.get("input_quantization")
    shape = "x".join(str(d) for d in contract["input_shape"][:2])
    lines = [
        "## Preprocessing contract",
        "",
        "The runtime, the training and this evaluation share it (`edge/contract.py`; also in the sidecar JSON):",
        "",
    ]
    steps = [
        f"Convert the frame to {contract['color']} and crop the face box.",
        f"Resize to {shape}: {contract['resize']}.",
        f"Scale each grey level p (0-255) to x = p / {1 / scale:g} {'-' if offset < 0 else '+'} {abs(offset):g}, "
        f"so x lies in [{offset:g}, {high:g}].",
    ]
    if quant:
        steps.append(
            f"Quantize: q = clip(round(x / {quant['scale']:.6g}) {plus(quant['zero_point'])}, -128, 127) as int8."
        )
    if contract.get("shift_tta"):
        pixels = contract["shift_tta"]
        steps.append(
            f"Also make four copies of the face shifted {pixels} pixels right, left, down and up (borders mirrored); "
            "run each of the five and average their score vectors."
        )
    if contract["flip_tta"]:
        steps.append("Run the face and its horizontal mirror" + (" (each of the five)" if contract.get("shift_tta") else "")
                     + "; average the score vectors.")
    out = sidecar.get("output_quantization")
    if out:
        labels = ", ".join(contract["labels"])
        steps.append(f"Scores = (q {plus(-out['zero_point'])}) x {out['scale']:.6g}, in label order {labels}.")
    if contract.get("balance"):
        prior = ", ".join(f"{share:.4f}" for share in contract["class_prior"])
        steps.append(
            f"Class-prior correction (after averaging): divide each score by its class's training share to the power "
            f"tau = {contract['balance']:g} (shares, in label order: {prior}) and renormalise, so a rare class is not "
            "out-voted by its rarity alone; `--balance 0` turns it off."
        )
        if contract.get("class_offsets"):
            offsets = ", ".join(f"{value:+.4f}" for value in contract["class_offsets"])
            steps.append(
                f"Before renormalising, also multiply each score by e to its class's offset (in label order: {offsets}), "
                "fitted on PublicTest at this tau; a `--balance` other than the recorded tau leaves them out."
            )
    return lines + [f"{number}. {step}" for number, step in enumerate(steps, 1)]


def limitations(report: dict, sidecar: dict) -> list[str]:
    per_class = report["results"]["int8"]["PrivateTest"]["per_class"]
    rarest = min(per_class, key=lambda label: per_class[label]["support"])
    commonest = max(per_class, key=lambda label: per_class[label]["support"])
    weakest = min(per_class, key=lambda label: per_class[label]["recall"])
    flip = report["flip_tta"]
    shape = "x".join(str(d) for d in sidecar["contract"]["input_shape"][:2])
    return [
        "## Known limitations",
        "",
        "- **Label noise.** Each FER2013 image has one crowd label; many are ambiguous or wrong, and a later "
        "re-annotation (FER+, Barsoum et al., 2016) disagreed with many of them. Accuracy is measured against "
        "this imperfect ground truth.",
        f"- **Class imbalance.** PrivateTest has {per_class[rarest]['support']:,} {rarest} faces against "
        f"{per_class[commonest]['support']:,} {commonest}; the class with the lowest recall is {weakest} "
        f"({score(per_class[weakest]['recall'])}). Macro-F1 is reported next to accuracy for this reason.",
        "- **Posed vs spontaneous.** Web images are often posed or exaggerated; everyday spontaneous expressions "
        "are subtler, and accuracy on them is expected to be lower than reported here.",
        "- **Head pose.** Mostly near-frontal faces; turned, tilted or profile faces are out of distribution.",
        f"- **Lighting and resolution.** Grey {shape} crops; low light, backlight, infrared and small distant faces "
        "degrade the input.",
        "- **Occlusion.** Masks, glasses, hands and hair over the face are not handled specially.",
        "- **Demographic coverage.** FER2013 has no age, gender, skin-tone or cultural annotations, so coverage "
        "is unknown and accuracy per group has not been measured; expression display also varies across cultures.",
        "- **Single frames.** Each crop is classified on its own, without temporal context.",
        "",
        "**A detected expression is not a felt emotion.** The model labels how a face looks, as annotators "
        "judged it, not what the person feels. People smile when unhappy and look neutral when "
        "moved (Barrett et al., 2019, *Emotional Expressions Reconsidered*). Do not report its output as "
        "what someone feels.",
        "",
        f"**Reading the figures.** Accuracy figures are on FER2013 PrivateTest, with the model selected on "
        f"PublicTest, against the {TITLES[report.get('judged_by', 'fer2013')]} unless a table says otherwise; "
        + (
            "the runtime averages each face with its mirror image (flip TTA), as the reported figures do."
            if flip
            else "neither the runtime nor the reported figures use flip test-time averaging."
        )
        + " They are on FER2013's crops, not on faces found by the runtime's detector in your scenes.",
    ]


def render_model_card(report: dict, sidecar: dict, train_report: dict | None) -> str:
    """Markdown model card for the int8 model; every figure comes from the three arguments."""
    if list(sidecar["labels"]) != list(report["labels"]):
        raise ValueError(f"sidecar labels {sidecar['labels']} differ from the report's {report['labels']}")
    intro = [
        f"# Model card: {report['int8_model']}",
        "",
        "Facial-expression recognition for the Raspberry Pi: mini-Xception trained on FER2013's faces with "
        f"{TRAINED_ON_TITLES[report.get('trained_on', 'fer2013')]}, full-int8 TFLite. "
        "Generated by `python -m convert` from report.json, the sidecar JSON and train_report.json; regenerate it, "
        "don't edit it.",
    ]
    sections = [
        intro,
        model_details(report, sidecar),
        intended_use(),
        training_data(report, train_report),
        evaluation(report),
        preprocessing(sidecar),
        limitations(report, sidecar),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run python -m convert first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def write_model_card(out_dir: Path, report_name: str = "report.json") -> Path:
    """Read report.json, the int8 sidecar and train_report.json (if any) from out_dir; write MODEL_CARD.md there."""
    out_dir = Path(out_dir)
    report = read_json(out_dir / report_name)
    sidecar = read_json(out_dir / Path(report["int8_model"]).with_suffix(".json").name)
    train_path = out_dir / "train_report.json"
    train_report = read_json(train_path) if train_path.is_file() else None
    if train_report is not None and train_report.get("model_sha256") != report.get("keras_sha256"):
        train_report = None  # not the report of this very Keras file: leave the training details out rather than mix models
    path = out_dir / CARD_FILE
    path.write_text(render_model_card(report, sidecar, train_report))
    return path
