"""The README's command table is generated from the registry; this keeps it honest."""

from tools.command_table import README, render


def test_readme_command_table_is_current():
    text = README.read_text()
    assert render(text) == text, "run: python tools/command_table.py --write"
