"""The "New runtime" dialog: offers only what the account may have, says why the rest is not.

The choices come from :func:`colabtray.core.offers.offers` (eligibility read from Colab);
unavailable ones are shown disabled with their reason, and the plan Colab named is shown, as
High-RAM depends on it. Creating runs in the background: the dialog stays responsive, shows
progress, and shows the client's typed errors as the sentences they carry. When the chosen
accelerator is not free, a button per alternative the core names tries that one in one
click. It closes when the runtime is assigned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from colabtray.colab.errors import AcceleratorUnavailableError, ColabError
from colabtray.colab.models import CPU, GPU, HIGH_MEM, TPU, Eligibility
from colabtray.core.app import Core
from colabtray.core.display import plan_line
from colabtray.core.offers import Offer, offers
from colabtray.text import printable
from colabtray.ui import icons

_GROUP_TITLES = {CPU: "CPU only", GPU: "GPU", TPU: "TPU"}


class NewRuntimeDialog(QDialog):
    def __init__(self, core: Core, report: Callable[[str, str], None] | None = None) -> None:
        super().__init__()
        self._core = core
        self._report = report  # where errors go if the dialog was closed meanwhile
        self._eligibility: Eligibility | None = None
        self._offers: list[Offer] = []
        self._busy = False
        self._not_free: list[str] = []  # models Colab just said are not free, in order
        self._fallback_buttons: dict[str, QPushButton] = {}  # label → its "Try …" button
        self.setObjectName("new-runtime")
        # The account is the one active when the dialog opened, whatever happens meanwhile.
        self._account = core.email
        several = bool(core.other_accounts())
        self.setWindowTitle(
            f"New Colab runtime for {self._account}"
            if several and self._account
            else "New Colab runtime"
        )
        self.setWindowIcon(icons.app_icon())

        intro = QLabel(
            "Colab assigns a machine of the kind you pick. It uses compute units until you "
            "disconnect it (or Colab reclaims it when idle)."
        )
        intro.setWordWrap(True)
        self.plan = QLabel()
        self.plan.setObjectName("plan")
        self.plan.setWordWrap(True)
        self.choices = QWidget()
        self._choices = QVBoxLayout(self.choices)
        self._choices.setContentsMargins(0, 0, 0, 0)
        self.group = QButtonGroup(self)
        self.group.buttonToggled.connect(self._selection_changed)
        self.high_ram = QCheckBox("High-RAM machine")
        self.high_ram.setObjectName("high-ram")
        self._high_ram_wanted = False  # the user's own choice, kept across fixed ones
        self.high_ram.toggled.connect(self._high_ram_toggled)
        self.high_ram_note = QLabel()
        self.high_ram_note.setObjectName("high-ram-note")
        self.high_ram_note.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fallbacks = QWidget()
        self.fallbacks.setObjectName("fallbacks")
        self._fallback_row = QHBoxLayout(self.fallbacks)
        self._fallback_row.setContentsMargins(0, 0, 0, 0)
        self.fallbacks.hide()
        self.buttons = QDialogButtonBox()
        self.create_button = QPushButton("Create")
        self.create_button.setObjectName("create")
        self.create_button.setDefault(True)
        self.buttons.addButton(self.create_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._create)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.plan)
        layout.addWidget(self.choices)
        layout.addWidget(self.high_ram)
        layout.addWidget(self.high_ram_note)
        layout.addWidget(self.status)
        layout.addWidget(self.fallbacks)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)

        known = core.known_eligibility()
        if known is not None:
            self._fill(known)
        else:
            self._set_status("Reading what this account may have…")
            self.create_button.setEnabled(False)
            self.high_ram.setEnabled(False)
            core.spawn(self._load(), on_error=self._fail)

    # ---- choices --------------------------------------------------------------------------

    async def _load(self) -> None:
        try:
            eligibility = await self._core.eligibility(self._account)
        except ColabError as exc:
            self._fail(exc.message)
            return
        self._set_status("")
        self._fill(eligibility)

    def _fill(self, eligibility: Eligibility) -> None:
        self._eligibility = eligibility
        self._offers = offers(eligibility)
        self.plan.setText(plan_line(eligibility.tier))
        boxes: dict[str, QVBoxLayout] = {}
        for index, offer in enumerate(self._offers):
            if offer.variant not in boxes:
                box = QGroupBox(_GROUP_TITLES.get(offer.variant, offer.variant))
                boxes[offer.variant] = QVBoxLayout(box)
                self._choices.addWidget(box)
            text = offer.label if offer.available else f"{offer.label} ({offer.short_reason})"
            button = QRadioButton(text)
            button.setObjectName(f"offer:{offer.label}")
            button.setEnabled(offer.available)
            if offer.reason:
                button.setToolTip(offer.reason)
            self.group.addButton(button, index)
            boxes[offer.variant].addWidget(button)
        default = next((o for o in self._offers if o.available and o.variant == GPU), None)
        default = default or self._offers[0]
        self.group.button(self._offers.index(default)).setChecked(True)
        self.create_button.setEnabled(True)

    def offer_buttons(self) -> dict[str, QRadioButton]:
        """Label → radio button (for tests and accessibility tools)."""
        # The group holds only the offers' radio buttons (_fill).
        return {
            o.label: cast(QRadioButton, self.group.button(i)) for i, o in enumerate(self._offers)
        }

    def fallback_buttons(self) -> dict[str, QPushButton]:
        """Label of the alternative → its "Try …" button, while alternatives are shown."""
        return dict(self._fallback_buttons)

    def describe(self) -> dict[str, object]:
        """The dialog's state as data (the control channel's ``menu`` command shows it)."""
        offer = self.selected()
        return {
            "choice": offer.label if offer else None,
            "high_ram": self.high_ram.isChecked(),
            "status": self.status.text(),
            "busy": self._busy,
            "alternatives": list(self.fallback_buttons()),
        }

    def selected(self) -> Offer | None:
        index = self.group.checkedId()
        return self._offers[index] if index >= 0 else None

    def _selection_changed(self, *_: object) -> None:
        offer = self.selected()
        if offer is None or self._eligibility is None:
            return
        self.high_ram.setEnabled(offer.high_ram_choice and not self._busy)
        if offer.high_ram_choice:
            self.high_ram.setChecked(self._high_ram_wanted)
        else:
            self.high_ram.setChecked(offer.high_ram_forced)
        note = offer.high_ram_note(self._eligibility.tier)
        self.high_ram_note.setText(note or "")
        self.high_ram_note.setVisible(bool(note))

    def _high_ram_toggled(self, checked: bool) -> None:
        if self.high_ram.isEnabled():
            self._high_ram_wanted = checked

    # ---- creating -------------------------------------------------------------------------

    def _create(self) -> None:
        offer = self.selected()
        if offer is None or self._busy:
            return
        high_mem = self.high_ram.isChecked() and HIGH_MEM in offer.shapes
        self._show_alternatives(None, ())
        self._set_busy(True)
        self._set_status(
            f"Asking Colab for a {offer.label} runtime… starting one can take a minute."
        )
        self._core.spawn(self._assign(offer, high_mem), on_error=self._fail)

    async def _assign(self, offer: Offer, high_mem: bool) -> None:
        try:
            await self._core.create_checked(
                offer.variant,
                offer.accelerator,
                account=self._account,
                high_mem=high_mem,
                not_free=tuple(self._not_free),
            )
        except AcceleratorUnavailableError as exc:
            if exc.accelerator and exc.accelerator not in self._not_free:
                self._not_free.append(exc.accelerator)
            # Shown, the alternatives are buttons; closed, the sentence names them.
            self._fail(exc.plain if self.isVisible() else exc.message)
            self._show_alternatives(offer.variant, exc.alternatives)
            return
        except ColabError as exc:
            self._fail(exc.message)
            return
        self._set_busy(False)
        self.accept()

    # ---- when the chosen one is not free --------------------------------------------------

    def _show_alternatives(self, variant: str | None, models: tuple[str, ...]) -> None:
        """A "Try …" button per alternative the core named (in its order), or none."""
        for button in self._fallback_buttons.values():
            button.hide()
            button.deleteLater()
        self._fallback_buttons = {}
        for model in models:
            index = self._index_of(variant, model)
            if index is None:
                continue
            label = self._offers[index].label
            button = QPushButton(f"Try {label}")
            button.setObjectName(f"fallback:{label}")
            button.setAutoDefault(False)
            button.clicked.connect(lambda _=False, i=index: self._try_instead(i))
            self._fallback_row.addWidget(button)
            self._fallback_buttons[label] = button
        self.fallbacks.setVisible(bool(self._fallback_buttons))

    def _index_of(self, variant: str | None, model: str) -> int | None:
        for index, offer in enumerate(self._offers):
            if offer.available and offer.variant == variant and offer.accelerator == model:
                return index
        return None

    def _try_instead(self, index: int) -> None:
        """One click: choose that alternative and ask Colab for it at once."""
        if self._busy:
            return
        self.group.button(index).setChecked(True)
        self._create()

    def _fail(self, sentence: str) -> None:
        self._set_busy(False)
        self._set_status(sentence, error=True)
        if not self.isVisible() and self._report is not None:
            self._report("Could not create the runtime", sentence)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.choices.setEnabled(not busy)
        self.create_button.setEnabled(not busy and self.selected() is not None)
        self._selection_changed()

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(printable(text))
        self.status.setProperty("error", error)
        self.status.setStyleSheet("color: #c5221f;" if error else "")
