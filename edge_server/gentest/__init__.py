"""Periodic generator tests (NFPA 110 §8.4 monthly exercise): the runner (a state machine on
injected time), its schedule, the `gentests` table in site.db, the PDF report.
See docs/generator-tests.md."""
