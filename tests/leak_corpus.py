"""Two collections' documents for the leak suite (tests/test_leaks*.py): HR and finance share no word that
matters, so a question only finance answers finds nothing in HR; and the marks of each that must never reach a
caller who cannot read it."""

from __future__ import annotations

from pathlib import Path

HR_DOCS = {
    "parental-leave.md": "# Parental Leave Policy\n\nEmployees receive twenty-six weeks of paid parental leave after "
    "one year of service. Requests go to the People Operations director, Marguerite Okonkwo, at least eight weeks "
    "before the leave starts. Parental leave can be split into two blocks within the child's first year.\n",
    "remote-work.md": "# Remote Work Guidelines\n\nStaff may work remotely up to three days a week with their "
    "manager's agreement. Home office equipment is reimbursed up to four hundred pounds once every three years.\n",
}
FINANCE_DOCS = {
    "q3-report.md": "# Third Quarter Results\n\nZephyrine Holdings reported third quarter revenue of 48.7 million "
    "euros, an increase of nine percent. The audit was signed by Casimir Vandersloot of Brightwater Auditors. "
    "Operating margin rose to seventeen percent on lower logistics costs.\n",
}
#: Words, sources and titles of the finance collection: none may reach a caller who cannot read it.
FINANCE_MARKS = ("Zephyrine", "Vandersloot", "Brightwater", "48.7", "q3-report", "Third Quarter Results", "finance")
HR_MARKS = ("Okonkwo", "twenty-six weeks", "parental-leave", "Parental Leave Policy", "Remote Work")

HR_QUESTION = "How many weeks of paid parental leave do employees receive?"
FINANCE_QUESTION = "What revenue did Zephyrine Holdings report in the third quarter?"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder
