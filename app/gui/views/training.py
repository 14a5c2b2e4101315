"""Training: dataset preview, start / cancel, progress with ETA, live loss plot, adapter versions,
eval."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import training_api
from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import LinePlot, Notice
from app.gui.workers import Job

PHASES = {
    "load": "Loading the base model…",
    "resume": "Resuming from the last checkpoint…",
    "train": "Training",
    "export": "Exporting the adapter…",
    "merge": "Building the fast model…",
    "note": "",
    "done": "Finished",
    "cancelled": "Cancelled",
    "error": "Stopped",
}


# dataset split -> what it is for, in words
SPLITS = {
    "train": "learn",
    "heldout_paraphrase": "test (reworded)",
    "heldout_memory": "test (unseen note)",
    "abstain_eval": "test (should not know)",
}


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return (
        f"{s // 3600} h {s % 3600 // 60} min"
        if s >= 3600
        else f"{s // 60} min {s % 60} s"
        if s >= 60
        else f"{s} s"
    )


class TrainingPage(Page):
    title = "Training"
    refresh_on_show = True  # `memex train` in a terminal may have added an adapter
    subtitle = (
        "Teach your own small model what you remember (a LoRA adapter, trained on this computer). "
        "Forgotten memories are never trained on."
    )

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.job: Job | None = None
        self.last_event: dict[str, Any] = {}
        self.feature = services.training_feature()
        self.notice = Notice(self.feature.reason)
        self.notice.setVisible(not self.feature.available)
        self.layout_.addWidget(self.notice)
        body = QHBoxLayout()
        self.body = QWidget()
        self.body.setLayout(body)
        self.layout_.addWidget(self.body, 1)
        if not self.feature.available:
            self.body.hide()
            self.layout_.addStretch(1)
            return

        left = QVBoxLayout()
        data_box = QGroupBox("1. What it learns")
        dl = QVBoxLayout(data_box)
        row = QHBoxLayout()
        self.preview_btn = QPushButton("Preview dataset")
        self.preview_btn.setAccessibleName("Preview the training dataset")
        self.preview_label = QLabel(
            "Questions and answers made from your memories, before training."
        )
        self.preview_label.setObjectName("muted")
        self.preview_label.setWordWrap(True)
        row.addWidget(self.preview_btn)
        row.addWidget(self.preview_label, 1)
        dl.addLayout(row)
        self.dataset = QTreeWidget()
        self.dataset.setAccessibleName("Training examples")
        self.dataset.setHeaderLabels(["Question", "Answer", "Use"])
        self.dataset.setRootIsDecorated(False)
        self.dataset.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.dataset.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.dataset.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.dataset.header().setStretchLastSection(False)
        dl.addWidget(self.dataset)
        left.addWidget(data_box, 1)

        run_box = QGroupBox("2. Train")
        rl = QVBoxLayout(run_box)
        form = QFormLayout()
        self.steps = QSpinBox()
        self.steps.setRange(0, 100000)
        self.steps.setSpecialValueText("automatic (3 passes over the data)")
        self.steps.setAccessibleName("Training steps")
        self.offload = QComboBox()
        for key, label in (
            ("disk", "Low memory (spill to disk)"),
            ("none", "Fastest (needs most memory)"),
            ("cpu", "GPU with CPU offload"),
        ):
            self.offload.addItem(label, key)
        self.offload.setAccessibleName("Memory mode")
        form.addRow("Steps", self.steps)
        form.addRow("Memory mode", self.offload)
        rl.addLayout(form)
        row = QHBoxLayout()
        self.start_btn = QPushButton("Start training")
        self.start_btn.setObjectName("primary")
        self.start_btn.setAccessibleName("Start training")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setAccessibleName("Cancel training")
        self.cancel_btn.setEnabled(False)
        row.addWidget(self.start_btn)
        row.addWidget(self.cancel_btn)
        row.addStretch(1)
        rl.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Training progress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("not started")
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Training status")
        rl.addWidget(self.progress)
        rl.addWidget(self.status)
        left.addWidget(run_box)
        body.addLayout(left, 3)

        right = QVBoxLayout()
        self.loss_plot = LinePlot("Training loss", "")
        self.loss_plot.empty_text = "The loss curve appears here while training runs."
        right.addWidget(self.loss_plot)
        ad_box = QGroupBox("3. Your adapters")
        al = QVBoxLayout(ad_box)
        self.adapters = QTreeWidget()
        self.adapters.setAccessibleName("Adapter versions")
        self.adapters.setHeaderLabels(["Version", "Created", "Steps", "Loss", "Status"])
        self.adapters.setRootIsDecorated(False)
        self.adapters.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        al.addWidget(self.adapters, 1)
        self.adapters_empty = QLabel(
            "No adapter yet: chat uses the base model until you train one."
        )
        self.adapters_empty.setObjectName("muted")
        self.adapters_empty.setWordWrap(True)
        al.addWidget(self.adapters_empty)
        row = QHBoxLayout()
        self.activate_btn = QPushButton("Activate")
        self.rollback_btn = QPushButton("Roll back")
        self.eval_btn = QPushButton("Evaluate")
        self.activate_btn.setAccessibleName("Activate selected adapter")
        self.rollback_btn.setAccessibleName("Roll back to the previous adapter")
        self.eval_btn.setAccessibleName("Evaluate base model against the adapter")
        for b in (self.activate_btn, self.rollback_btn, self.eval_btn):
            row.addWidget(b)
        al.addLayout(row)
        self.eval_label = QLabel("")
        self.eval_label.setWordWrap(True)
        self.eval_label.setAccessibleName("Evaluation results")
        al.addWidget(self.eval_label)
        right.addWidget(ad_box, 1)
        body.addLayout(right, 2)

        self.preview_btn.clicked.connect(self.preview)
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.activate_btn.clicked.connect(self.activate_selected)
        self.rollback_btn.clicked.connect(self.rollback)
        self.eval_btn.clicked.connect(self.evaluate)
        services.adapters_changed.connect(self.refresh)

    # -- data -------------------------------------------------------------------------
    def refresh(self) -> None:
        if not self.feature.available:
            return
        settings = self.services.settings
        self.services.jobs.start(
            lambda ctx: training_api.adapters(settings),
            name="adapters",
            on_done=self._show_adapters,
            on_error=self.show_error,
        )
        if not self.dataset.topLevelItemCount():
            self.preview()

    def _show_adapters(self, data: dict[str, Any]) -> None:
        self.adapters.clear()
        for v in data["versions"]:
            loss = ""
            if v.get("loss_first") is not None and v.get("loss_last") is not None:
                loss = f"{v['loss_first']:.2f} → {v['loss_last']:.2f}"
            item = QTreeWidgetItem(
                [
                    v["version"],
                    str(v.get("created_at", "")).replace("T", " ")[:16],
                    str(v.get("steps") or ""),
                    loss,
                    "active" if v["version"] == data["active"] else "",
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, v["version"])
            self.adapters.addTopLevelItem(item)
        has = bool(data["versions"])
        self.adapters.setVisible(has)
        self.adapters_empty.setVisible(not has)
        for b in (self.activate_btn, self.rollback_btn):
            b.setEnabled(has)

    def preview(self) -> None:
        self.preview_label.setText("Building the dataset from your memories…")
        svc = self.services
        svc.jobs.start(
            lambda ctx: training_api.preview(svc),
            name="dataset",
            on_done=self._show_preview,
            on_error=lambda m: self.preview_label.setText(m),
        )

    def _show_preview(self, data: dict[str, Any]) -> None:
        self.dataset.clear()
        for r in data["rows"]:
            item = QTreeWidgetItem([r["question"], r["answer"], SPLITS.get(r["split"], r["split"])])
            item.setToolTip(0, r["question"])
            item.setToolTip(1, r["answer"])
            self.dataset.addTopLevelItem(item)
        learn = data["splits"].get("train", 0)
        test = data["examples"] - learn
        self.preview_label.setText(
            f"{data['examples']} questions from your memories: {learn} to learn, "
            f"{test} kept aside to test it."
        )

    # -- run --------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        return {"steps": self.steps.value(), "offload": self.offload.currentData()}

    def start(self) -> None:
        if self.job is not None:
            return
        self.loss_plot.set_values([])
        self.progress.setRange(0, 0)  # busy until the first step reports a total
        self.progress.setFormat("starting…")
        self.status.setText("Starting the training process…")
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        svc, opts = self.services, self.options()
        self.job = svc.jobs.start(
            lambda ctx: training_api.run_training(svc, opts, ctx),
            name="train",
            on_progress=self._on_event,
            on_done=self._on_done,
            on_error=self._on_error,
            on_finished=self._on_finished,
        )

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_btn.setEnabled(False)
            self.status.setText("Cancelling after the current step (a checkpoint is kept)…")

    def shutdown(self) -> None:
        self.cancel()

    def _on_event(self, event: dict[str, Any]) -> None:
        self.last_event = event
        phase = str(event.get("phase", ""))
        if phase == "note":
            self.status.setText(str(event.get("message", "")))
            return
        total, step = int(event.get("total") or 0), int(event.get("step") or 0)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(step)
            self.progress.setFormat(f"{PHASES.get(phase, phase)}: step %v of %m")
        else:
            self.progress.setFormat(PHASES.get(phase, phase) or "working…")
        if phase == "train" and event.get("loss") is not None:
            self.loss_plot.append(float(event["loss"]))
            parts = [f"loss {float(event['loss']):.3f}"]
            if event.get("tokens_s"):
                parts.append(f"{float(event['tokens_s']):.0f} tokens/s")
            if event.get("peak_rss_mb"):
                parts.append(f"peak memory {float(event['peak_rss_mb']) / 1024:.1f} GB")
            if event.get("eta_s") is not None:
                parts.append(f"about {fmt_eta(float(event['eta_s']))} left")
            self.status.setText(" · ".join(parts))

    def _on_done(self, result: dict[str, Any]) -> None:
        if result.get("cancelled"):
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self.status.setText(
                "Training cancelled. Your active adapter is unchanged; starting again resumes "
                "from the last checkpoint."
            )
            return
        self.progress.setFormat("finished")
        self.status.setText(
            f"Adapter {result.get('version')} is trained and active: loss "
            f"{result.get('loss_first', 0):.3f} → {result.get('loss_last', 0):.3f}."
        )
        self.services.adapters_changed.emit()

    def _on_error(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("stopped")
        self.status.setText(message)

    def _on_finished(self) -> None:
        self.job = None
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    # -- adapters ---------------------------------------------------------------------
    def _selected_version(self) -> str | None:
        item = self.adapters.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item else None

    def _after_switch(self, _r: object) -> None:
        svc = self.services
        svc.jobs.start(lambda ctx: svc.reload_backend(), name="reload-model")
        svc.adapters_changed.emit()

    def activate_selected(self) -> None:
        version = self._selected_version()
        if version:
            settings = self.services.settings
            self.services.jobs.start(
                lambda ctx: training_api.activate(settings, version),
                name="activate",
                on_done=self._after_switch,
                on_error=self.show_error,
            )

    def rollback(self) -> None:
        settings = self.services.settings
        self.services.jobs.start(
            lambda ctx: training_api.rollback(settings),
            name="rollback",
            on_done=self._after_switch,
            on_error=self.show_error,
        )

    def evaluate(self) -> None:
        svc, version = self.services, self._selected_version()
        self.eval_label.setText("Evaluating: base model vs. adapter on held-out questions…")
        svc.jobs.start(
            lambda ctx: training_api.evaluate(svc, version),
            name="eval",
            on_done=self._show_eval,
            on_error=lambda m: self.eval_label.setText(m),
        )

    def _show_eval(self, r: dict[str, Any]) -> None:
        base = r.get("base", {}).get("qa_accuracy")
        ad = r.get("adapter", {}).get("qa_accuracy")
        text = (
            f"{r.get('n', 0)} held-out questions: base model {base:.0%} correct"
            if base is not None
            else ""
        )
        if ad is not None:
            text += f", with adapter {r.get('version')} {ad:.0%}"
        self.eval_label.setText(text + ".")
