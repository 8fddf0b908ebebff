"""Reading, validating and harmonising the data an evaluation needs.

Readers turn raw files (Explore Education Statistics CSVs, registers, the bundled default data) into
validated tables; :mod:`kinship_eval.data.panel` brings them together into the LA x period Panel.
"""
