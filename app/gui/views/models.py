"""Models: which backend and model answer, the MoE cache budget, live speed and cache hit-rate
plots.

The MoE benchmark runs `memex moe bench --json` as a child process (QProcess), so neither
torch nor the engine loads into the app and the window stays responsive.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.services import Services
from app.gui.views.base import Page
from app.gui.widgets import LinePlot, Notice
from app.gui.workers import JobContext

POLICIES = ("lru", "lfu", "on_demand", "resident", "fate", "fate_plus")
QUANTS = ("none", "int8", "int4", "int4_int2")  # Settings.moe_quant ("fate": int4_int2)


BACKEND_LABELS = {
    "llamacpp": "llama.cpp (GGUF)",
    "moe": "MoE offloading engine",
    "openai": "OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp)",
}


def backend_names() -> list[str]:
    from inference.base import BACKENDS

    return list(BACKENDS)


class ModelsPage(Page):
    title = "Models"
    subtitle = "The local model that answers you, and how it uses memory. Nothing is downloaded."

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(services, parent)
        self.moe = services.moe_feature()
        body = QHBoxLayout()
        self.layout_.addLayout(body, 1)

        left = QVBoxLayout()
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.backend = QComboBox()
        self.backend.setAccessibleName("Backend")
        for name in backend_names():
            self.backend.addItem(BACKEND_LABELS.get(name, name), name)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("bundled SmolLM2-135M-Instruct")
        self.model_path.setAccessibleName("Model file")
        browse = QPushButton("Browse…")
        browse.setAccessibleName("Choose a GGUF model file")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic (physical cores)")
        self.threads.setAccessibleName("CPU threads")
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(256, 131072)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setAccessibleName("Context length in tokens")
        form.addRow("Backend", self.backend)
        form.addRow("Model file", row)
        form.addRow("CPU threads", self.threads)
        form.addRow("Context (tokens)", self.n_ctx)
        self.leaves = QLabel("")
        self.leaves.setObjectName("muted")
        self.leaves.setWordWrap(True)
        self.leaves.setAccessibleName("What leaves this computer")
        form.addRow(self.leaves)
        left.addWidget(box)
        left.addWidget(self._found_box())

        moe_box = QGroupBox("MoE expert offloading")
        moe_form = QFormLayout(moe_box)
        self.moe_model = QLineEdit()
        self.moe_model.setPlaceholderText("checkpoint folder, 'moefied' or 'tiny'")
        self.moe_model.setAccessibleName("MoE model")
        self.moe_budget = QLineEdit()
        self.moe_budget.setPlaceholderText("2x, 0.25 or 2GB")
        self.moe_budget.setAccessibleName("Expert cache budget")
        self.moe_policy = QComboBox()
        self.moe_policy.addItems(POLICIES)
        self.moe_policy.setAccessibleName("Expert cache policy")
        moe_form.addRow("MoE model", self.moe_model)
        moe_form.addRow("Cache budget", self.moe_budget)
        moe_form.addRow("Cache policy", self.moe_policy)
        self.moe_quant = QComboBox()
        self.moe_quant.addItems(QUANTS)
        self.moe_quant.setAccessibleName("Expert storage")
        self.moe_quant.setToolTip("none keeps experts exact; int8/int4/int4_int2 move fewer bytes")
        moe_form.addRow("Expert storage", self.moe_quant)
        self.moe_notice = Notice(self.moe.reason)
        self.moe_notice.setVisible(not self.moe.available)
        moe_form.addRow(self.moe_notice)
        moe_box.setEnabled(True)
        left.addWidget(moe_box)

        buttons = QHBoxLayout()
        self.saved_label = QLabel("")
        self.saved_label.setObjectName("muted")
        self.saved_label.setWordWrap(True)
        self.save_btn = QPushButton("Save and use")
        self.save_btn.setObjectName("primary")
        self.save_btn.setAccessibleName("Save model settings")
        self.save_btn.clicked.connect(self.save)
        buttons.addWidget(self.saved_label, 1)
        buttons.addWidget(self.save_btn)
        left.addLayout(buttons)
        left.addStretch(1)
        body.addLayout(left, 1)

        right = QVBoxLayout()
        self.speed_plot = LinePlot("Answer speed", "tokens/s", y_min=0)
        self.speed_plot.empty_text = (
            "Ask something on the Chat screen: each answer's speed appears here."
        )
        self.hit_plot = LinePlot("Expert-cache hit rate", "", y_min=0, y_max=1)
        self.hit_plot.empty_text = (
            "Appears while an MoE model answers (backend: MoE offloading engine), "
            "or after a benchmark run below."
        )
        self.last_answer = QLabel("")
        self.last_answer.setObjectName("muted")
        self.last_answer.setWordWrap(True)
        self.last_answer.setAccessibleName("Last answer's speed")
        self.last_answer.hide()  # until the first answer: no blank gap between the plots
        right.addWidget(self.speed_plot, 1)
        right.addWidget(self.last_answer)
        right.addWidget(self.hit_plot, 1)
        bench_row = QHBoxLayout()
        self.bench_btn = QPushButton("Run MoE benchmark")
        self.bench_btn.setAccessibleName("Run the MoE cache benchmark")
        self.bench_btn.setToolTip(
            "memex moe bench on a tiny model: every cache policy, same prompt"
        )
        self.bench_status = QLabel(
            "Compares the expert-cache policies on a tiny MoE model, in its own "
            "process (about a minute)."
        )
        self.bench_status.setObjectName("muted")
        self.bench_status.setWordWrap(True)
        bench_row.addWidget(self.bench_btn)
        bench_row.addWidget(self.bench_status, 1)
        right.addLayout(bench_row)
        self.bench_table = QTreeWidget()
        self.bench_table.setAccessibleName("Benchmark results")
        self.bench_table.setHeaderLabels(
            ["Policy", "Decode tok/s", "Hit rate", "MB moved", "Stall ms"]
        )
        self.bench_table.setRootIsDecorated(False)
        self.bench_table.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.bench_table.setFixedHeight(130)
        right.addWidget(self.bench_table)
        if not self.moe.available:
            self.bench_btn.hide()
            self.bench_status.setText(
                "The MoE benchmark needs the MoE engine (not installed in this build yet)."
            )
        self.bench_btn.clicked.connect(self.run_bench)
        body.addLayout(right, 1)
        self.proc: QProcess | None = None
        services.generation_stats.connect(self._on_stats)
        self._load_settings()
        self.refresh_found()

    def _load_settings(self) -> None:
        s = self.services.settings
        idx = self.backend.findData(s.backend)
        self.backend.setCurrentIndex(max(0, idx))
        self.model_path.setText(s.model_path)
        self.threads.setValue(s.threads)
        self.n_ctx.setValue(s.n_ctx)
        self.moe_model.setText(s.moe_model)
        self.moe_budget.setText(s.moe_budget)
        i = self.moe_policy.findText(s.moe_policy)
        if i < 0:
            self.moe_policy.addItem(s.moe_policy)
            i = self.moe_policy.count() - 1
        self.moe_policy.setCurrentIndex(i)
        self.moe_quant.setCurrentIndex(
            max(0, self.moe_quant.findText("int4_int2" if s.moe_quant == "fate" else s.moe_quant))
        )
        self._say_what_leaves()

    # -- models found on this computer (Ollama, LM Studio, MEMEX_HOME/models, bundled) ----
    def _found_box(self) -> QGroupBox:
        box = QGroupBox("Models on this computer")
        lay = QVBoxLayout(box)
        self.found = QTreeWidget()
        self.found.setAccessibleName("Models found on this computer")
        self.found.setHeaderLabels(
            ["Model", "Architecture", "Size", "Quantisation", "Needs RAM", "From"]
        )
        self.found.setRootIsDecorated(False)
        self.found.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.found.setFixedHeight(150)
        self.found.itemDoubleClicked.connect(lambda item, _col: self.use_model(item))
        lay.addWidget(self.found)
        row = QHBoxLayout()
        self.found_status = QLabel("Looking for models…")
        self.found_status.setObjectName("muted")
        self.found_status.setWordWrap(True)
        self.use_btn = QPushButton("Use this model")
        self.use_btn.setAccessibleName("Answer with the selected model")
        self.use_btn.clicked.connect(lambda: self.use_model(self.found.currentItem()))
        row.addWidget(self.found_status, 1)
        row.addWidget(self.use_btn)
        lay.addLayout(row)
        return box

    def refresh_found(self) -> None:
        from app.model_choice import listing

        settings = self.services.settings
        self.services.jobs.start(
            lambda _ctx: listing(settings),
            name="find-models",
            on_done=self.show_found,
            on_error=self.found_status.setText,
        )

    def show_found(self, payload: dict[str, Any]) -> None:
        from PySide6.QtCore import Qt

        self.found.clear()
        for m in payload["models"]:
            item = QTreeWidgetItem(
                [
                    ("● " if m["active"] else "") + m["name"],
                    m.get("architecture", ""),
                    m.get("size", ""),
                    m.get("quantisation", ""),
                    m.get("ram", ""),
                    m["origin"],
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, m)
            item.setToolTip(0, m["problem"] or m["path"])
            if not m["usable"]:
                item.setDisabled(True)
            self.found.addTopLevelItem(item)
        usable = sum(m["usable"] for m in payload["models"])
        note, self._found_note = getattr(self, "_found_note", ""), ""
        noun = "model" if usable == 1 else "models"
        self.found_status.setText(
            note
            or f"{usable} usable GGUF {noun} found (used where they lie, never "
            "copied). Double-click one to answer with it."
        )

    def use_model(self, item: QTreeWidgetItem | None) -> None:
        from PySide6.QtCore import Qt

        if item is None:
            self.found_status.setText("Select a model first.")
            return
        m = item.data(0, Qt.ItemDataRole.UserRole)
        if not m["usable"]:
            self.found_status.setText(m["problem"])
            return
        svc, path = self.services, ("" if m["origin"] == "bundled" else m["path"])

        def done(_settings: Any) -> None:
            self._load_settings()
            self._found_note = f"Now answering with {m['name']}."
            self.refresh_found()

        svc.jobs.start(
            lambda _ctx: svc.apply_settings(model_path=path, backend="llamacpp"),
            name="use-model",
            on_done=done,
            on_error=self.found_status.setText,
        )

    def _say_what_leaves(self) -> None:
        from inference.openai_backend import is_loopback

        s = self.services.settings
        if s.backend != "openai":
            self.leaves.setText("Everything stays on this computer.")
        elif not s.openai_base_url or is_loopback(s.openai_base_url):
            self.leaves.setText(
                "Questions and the memories they find go to the model server on this computer."
            )
        else:
            allowed = (
                "allowed"
                if s.allow_remote_backend
                else "refused until you set allow_remote_backend"
            )
            self.leaves.setText(
                f"Questions and the memories they find would go to {s.openai_base_url} "
                f"(another computer: {allowed})."
            )

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", "", "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.model_path.setText(path)

    def values(self) -> dict[str, Any]:
        return {
            "backend": self.backend.currentData(),
            "model_path": self.model_path.text().strip(),
            "threads": self.threads.value(),
            "n_ctx": self.n_ctx.value(),
            "moe_model": self.moe_model.text().strip(),
            "moe_budget": self.moe_budget.text().strip() or "2x",
            "moe_policy": self.moe_policy.currentText(),
            "moe_quant": self.moe_quant.currentText(),
        }

    def save(self) -> None:
        values = self.values()
        svc = self.services

        def work(ctx: JobContext) -> Any:
            return svc.apply_settings(**values)

        svc.jobs.start(
            work,
            name="save-settings",
            on_error=self.show_error,
            on_done=lambda _s: self.saved_label.setText(
                "Saved. The next answer uses these settings."
            ),
        )

    def _on_stats(self, stats: dict[str, Any]) -> None:
        """Live samples while an answer streams; the answer's summary when it is done."""
        if stats.get("tok_s"):
            self.speed_plot.append(float(stats["tok_s"]))
        if stats.get("hit_rate") is not None:
            self.hit_plot.append(float(stats["hit_rate"]))
        if stats.get("final"):
            self._describe_last(stats)

    def _describe_last(self, stats: dict[str, Any]) -> None:
        backend = str(stats.get("backend") or "")
        name = {"llamacpp": "llama.cpp", "moe": "the MoE engine"}.get(
            backend, backend or "the model"
        )
        text = f"Last answer: {float(stats.get('tok_s') or 0):.1f} tokens/s on {name}"
        if stats.get("model"):
            text += f" ({stats['model']})"
        if stats.get("hit_rate") is not None:
            text += f", expert-cache hit rate {float(stats['hit_rate']):.0%}"
        self.last_answer.setText(text + ".")
        self.last_answer.show()
        if stats.get("hit_rate") is None and backend != "moe":
            # a dense model has no experts to cache: say so instead of an empty plot
            self.hit_plot.empty_text = (
                f"Hit rate applies to MoE models; the last answer came from {name}, "
                "a dense model with no expert cache. Choose “MoE offloading engine” "
                "as the backend to see it, or run the benchmark below."
            )
            self.hit_plot.update()

    # -- benchmark (child process) ----------------------------------------------------
    def run_bench(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            return
        self.proc = QProcess(self)
        self.proc.setProgram(sys.executable)
        self.proc.setArguments(
            [
                "-m",
                "app.cli",
                "--home",
                str(self.services.settings.home),
                "moe",
                "bench",
                "--model",
                "tiny",
                "--tokens",
                "16",
                "--policies",
                "on_demand,lru,lfu,resident",
                "--reference",
                "none",
                "--json",
            ]
        )
        self.proc.finished.connect(self._bench_done)
        self.bench_btn.setText("Stop benchmark")
        self.bench_status.setText("Running on a tiny MoE model…")
        self.proc.start()

    def _bench_done(self, code: int, _status: object) -> None:
        proc, self.proc = self.proc, None
        self.bench_btn.setText("Run MoE benchmark")
        raw = bytes(proc.readAllStandardOutput().data()) if proc else b""
        out = raw.decode("utf-8", "replace")
        try:
            data = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except json.JSONDecodeError:
            data = {}
        if code != 0 or "policies" not in data:
            self.bench_status.setText(
                data.get("error") or "The benchmark stopped before it finished."
            )
            return
        self.show_bench(data)

    def show_bench(self, data: dict[str, Any]) -> None:
        self.bench_table.clear()
        for name, r in data["policies"].items():
            self.bench_table.addTopLevelItem(
                QTreeWidgetItem(
                    [
                        name,
                        f"{r.get('decode_tok_s', 0):.1f}",
                        f"{r.get('hit_rate', 0):.2f}",
                        f"{r.get('bytes_moved', 0) / 1e6:.1f}",
                        f"{r.get('stall_ms', 0):.1f}",
                    ]
                )
            )
        self.hit_plot.set_values([float(r.get("hit_rate", 0)) for r in data["policies"].values()])
        m = data.get("model", {})
        self.bench_status.setText(
            f"{m.get('name', 'model')}: {m.get('layers', '?')} layers × "
            f"{m.get('experts', '?')} experts, top-{m.get('top_k', '?')}; "
            f"budget {data.get('budget', '')}."
        )
