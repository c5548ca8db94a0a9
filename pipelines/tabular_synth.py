"""A generated stand-in for UCI Census-Income (KDD): the same 42 columns, file format and label
values, with planted signal for the two tasks of the MMoE paper (income > 50K, never married).

It lets tests and `recforge bench train` exercise the tabular path where the real files cannot be
downloaded; `examples/census_income.yaml` reads either. Its AUCs say nothing about the real data.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = (
    "age", "class_of_worker", "detailed_industry_recode", "detailed_occupation_recode",
    "education", "wage_per_hour", "enroll_in_edu_inst_last_wk", "marital_stat",
    "major_industry_code", "major_occupation_code", "race", "hispanic_origin", "sex",
    "member_of_a_labor_union", "reason_for_unemployment", "full_or_part_time_employment_stat",
    "capital_gains", "capital_losses", "dividends_from_stocks", "tax_filer_stat",
    "region_of_previous_residence", "state_of_previous_residence",
    "detailed_household_and_family_stat", "detailed_household_summary_in_household",
    "instance_weight", "migration_code_change_in_msa", "migration_code_change_in_reg",
    "migration_code_move_within_reg", "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt", "num_persons_worked_for_employer", "family_members_under_18",
    "country_of_birth_father", "country_of_birth_mother", "country_of_birth_self", "citizenship",
    "own_business_or_self_employed", "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits", "weeks_worked_in_year", "year", "income",
)
NUMERIC = ("age", "wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks",
           "num_persons_worked_for_employer", "weeks_worked_in_year")
EDUCATION = ("Children", "High school graduate", "Some college but no degree",
             "Bachelors degree(BA AB BS)", "Masters degree(MA MS MEng MEd MSW MBA)",
             "Doctorate degree(PhD EdD)")
MARITAL = ("Married-civilian spouse present", "Divorced", "Widowed", "Separated")


def census_like_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 91, rows)
    adult = age >= 18
    education = np.where(age < 16, 0, np.minimum(rng.poisson(1.6, rows) + 1, len(EDUCATION) - 1))
    weeks = np.where(adult, rng.choice([0, 26, 52], rows, p=[0.3, 0.15, 0.55]), 0)
    gains = np.where(rng.random(rows) < 0.04, rng.integers(1000, 20000, rows), 0)
    sex = rng.choice(["Female", "Male"], rows)
    occupation = rng.integers(0, 15, rows)
    occupation_effect = np.sin(occupation)
    income_logit = (-7.5 + 0.9 * education + 2.0 * (weeks == 52) + 2.5 * (gains > 0)
                    + 0.4 * (sex == "Male") + 0.5 * occupation_effect
                    + 0.03 * np.clip(age - 18, 0, 40) - 9 * (~adult))
    income = rng.random(rows) < 1 / (1 + np.exp(-income_logit))
    married_logit = -2.0 + 0.12 * (age - 18) + 0.3 * (sex == "Female") - 0.2 * education
    never_married = (age < 16) | (rng.random(rows) > 1 / (1 + np.exp(-married_logit)))
    household = np.where(
        age < 18, "Child <18 never marr not in subfamily",
        np.where(never_married, rng.choice(["Child 18+ never marr Not in a subfamily",
                                            "Nonfamily householder", "Householder"], rows),
                 rng.choice(["Householder", "Spouse of householder"], rows)))
    frame = pd.DataFrame({
        "age": age,
        "education": np.array(EDUCATION)[education],
        "weeks_worked_in_year": weeks,
        "capital_gains": gains,
        "sex": sex,
        "major_occupation_code": [f"occupation {o}" for o in occupation],
        "detailed_occupation_recode": occupation * 3 + rng.integers(0, 3, rows),
        "marital_stat": np.where(never_married, "Never married",
                                 rng.choice(MARITAL, rows, p=[0.7, 0.15, 0.1, 0.05])),
        "detailed_household_and_family_stat": household,
        "wage_per_hour": np.where(weeks > 0, rng.integers(0, 3000, rows), 0),
        "dividends_from_stocks": np.where(rng.random(rows) < 0.1, rng.integers(1, 5000, rows), 0),
        "capital_losses": np.where(rng.random(rows) < 0.02, rng.integers(100, 3000, rows), 0),
        "num_persons_worked_for_employer": np.where(adult, rng.integers(0, 7, rows), 0),
        "instance_weight": rng.uniform(100, 5000, rows).round(2),
        "year": rng.choice([94, 95], rows),
        "income": np.where(income, "50000+.", "- 50000."),
    })
    for name in COLUMNS:
        if name not in frame:
            frame[name] = [f"{name[:6]} {v}" for v in rng.integers(0, 8, rows)]
    return frame[list(COLUMNS)]


def write_census_like(path: Path, rows: int, seed: int = 0) -> Path:
    """A header-less, comma-and-space separated file like census-income.data (gzip if the name
    ends in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(census_like_frame(rows, seed).astype(str).agg(", ".join, axis=1)) + "\n"
    with (gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w")) as handle:
        handle.write(text)
    return path
