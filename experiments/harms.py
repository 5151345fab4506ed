"""Study 3 — global vs local harms across languages (Multilingual Alignment Prism).

Global harms are rejected by every group; a local harm only by the groups that hold it
(``local_harm_holders``). Does a group-conditioned reward model refuse local harms for the
groups that hold them *without over-refusing* for the others, in every language? And does
learning harms in one language transfer to others?

Per seed: one multilingual society (one country per language), trained

- ``all_languages``: on all its comparisons (harms occur in every language);
- ``transfer``: on the same comparisons minus every item outside ``source_language`` that has
  a harmful candidate, so harm phrases are seen in the source language only.

Every model is scored on a probe of fresh harm-rich items (same society): on each pair with
exactly one harmful response, and for every group, does the group's reward prefer the harmless
response? That *refusal rate* is reported per item language and harm kind (global; local for
the groups that hold it; local for the others), next to the truth's rate (how often the group's
population majority prefers the harmless response).

What transfer can mean here: the simulator writes every language with its own phrases (its
lexicon), so a model trained on English harms has never seen the Spanish, French or Arabic
ones. A bag-of-hashed-n-grams backbone shares nothing across languages except surface
n-grams the phrases happen to share (cognates such as alcohol/alcohol/alcool, a shared
script); it has no notion of meaning. Transfer to Arabic should therefore be nil; any transfer
to Spanish or French measures cognate overlap, not understanding (a multilingual encoder,
study 6, is what could share meaning).

    python experiments/harms.py --config experiments/configs/harms.yaml [--seeds 0,1,2] [--quick]
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from experiments import common, societies  # noqa: E402

KINDS = ("global", "local_holders", "local_others")


@dataclass(frozen=True)
class HarmsConfig(common.StudyConfig):
    """Study 3.

    Attributes:
      heads: heads trained on all languages (pooled: the one-size reference).
      transfer_heads: heads trained with harms in ``source_language`` only.
      source_language: the one language whose harmful items stay in the transfer training set.
      probe_items: fresh items in the probe; ``probe_harm_rate`` / ``probe_local_harm_rate``
        are its per-candidate harm rates (high, so every cell of the table has pairs).
    """

    heads: tuple[str, ...] = ("pooled", "conditioned")
    transfer_heads: tuple[str, ...] = ("conditioned",)
    source_language: str = "en"
    probe_items: int = 4000
    probe_harm_rate: float = 0.15
    probe_local_harm_rate: float = 0.45


def harm_pairs(truth, rows):
    """The probe rows with exactly one harmful response, described.

    Returns:
      dict of ``[n]`` arrays over those rows: ``row`` (probe row index), ``kind`` (1 global,
      2 local), ``category`` (local category or -1), ``harmless_chosen`` (bool), ``language``
      (item language id).
    """

    rows = np.asarray(rows)
    h_chosen, h_rejected = truth.row_harm_type("chosen")[rows], truth.row_harm_type("rejected")[rows]
    one = (h_chosen == 0) != (h_rejected == 0)
    rows, h_chosen, h_rejected = rows[one], h_chosen[one], h_rejected[one]
    harmless_chosen = h_chosen == 0
    item = truth.row_item[rows]
    harmful_side = np.where(harmless_chosen, 1 - truth.row_side[rows], truth.row_side[rows])
    return {
        "row": rows,
        "kind": np.where(harmless_chosen, h_rejected, h_chosen),
        "category": truth.harm_category[item, harmful_side],
        "harmless_chosen": harmless_chosen,
        "language": truth.item_language[item],
    }


def refusal_rates(prob_all, p_group, pairs, truth) -> dict[str, dict[str, dict[str, float]]]:
    """Per item language and harm kind: how often groups prefer the harmless response.

    Args:
      prob_all: ``[n, G']`` a model's P(chosen ≻ rejected) on ``pairs`` rows under every group.
      p_group: ``[n, G']`` the truth's population probabilities on the same rows.
      pairs: :func:`harm_pairs` output.

    Returns:
      ``{language: {kind: {"model", "truth", "model_p", "truth_p", "n"}}}``: the model's and the
      truth's refusal rates (share of (pair, group) entries whose P(harmless ≻ harmful) > ½),
      mean probabilities, and the number of entries. Kinds are :data:`KINDS` and, per local
      category h, ``local_holders:h`` and ``local_others:h``.
    """

    flip = ~pairs["harmless_chosen"][:, None]
    model = np.where(flip, 1.0 - prob_all, prob_all)  # P(harmless ≻ harmful) per group
    true = np.where(flip, 1.0 - p_group, p_group)
    holders = truth.local_harm_holders[:, truth.cell_country]  # [H, G']
    local = pairs["kind"] == 2
    holds = np.zeros_like(model, bool)
    holds[local] = holders[pairs["category"][local]]
    masks = {
        "global": (pairs["kind"] == 1)[:, None] & np.ones_like(holds),
        "local_holders": local[:, None] & holds,
        "local_others": local[:, None] & ~holds,
    }
    for h in range(holders.shape[0]):
        in_category = (local & (pairs["category"] == h))[:, None]
        masks[f"local_holders:{h}"] = in_category & holds
        masks[f"local_others:{h}"] = in_category & ~holds
    out = {}
    for lang_id, lang in enumerate(truth.languages):
        in_lang = (pairs["language"] == lang_id)[:, None]
        out[lang] = {}
        for kind, mask in masks.items():
            m = mask & in_lang
            n = int(m.sum())
            out[lang][kind] = {
                "model": float(np.mean(model[m] > 0.5)) if n else float("nan"),
                "truth": float(np.mean(true[m] > 0.5)) if n else float("nan"),
                "model_p": float(np.mean(model[m])) if n else float("nan"),
                "truth_p": float(np.mean(true[m])) if n else float("nan"),
                "n": n,
            }
    return out


def transfer_rows(truth, language: str):
    """Rows kept for the transfer condition: every row, except rows of items outside
    ``language`` that have a harmful candidate."""

    if language not in truth.languages:
        from pluralrm.errors import ConfigError

        raise ConfigError(f"source_language {language!r} is not one of the society's languages {truth.languages}")
    item_lang = truth.item_language[truth.row_item]
    harmful = (truth.harm_type[truth.row_item] != 0).any(axis=1)
    return np.flatnonzero(~harmful | (item_lang == truth.languages.index(language)))


def run_seed(study: HarmsConfig, seed: int) -> dict:
    society = societies.make_society(study, seed)
    truth = society.truth
    probe, probe_rows = societies.probe_set([society], study.probe_items, harm_rate=study.probe_harm_rate,
                                         local_harm_rate=study.probe_local_harm_rate)
    pairs = harm_pairs(probe.truth, probe_rows)
    probe_data = probe.data.select(pairs["row"])
    p_group = probe.truth.p_group[pairs["row"]]
    kept = transfer_rows(truth, study.source_language)
    datasets = {"all_languages": society.data, "transfer": society.data.select(kept)}
    runs = [("all_languages", h) for h in study.heads] + [("transfer", h) for h in study.transfer_heads]
    out = {"society_seed": society.config.seed, "probe_pairs": int(len(pairs["row"])),
           "train_rows": {k: len(v) for k, v in datasets.items()}, "models": {}}
    for condition, head in runs:
        model, seconds = common.fit_model(common.train_config(study, seed, head), datasets[condition])
        prob_all = common.group_probabilities(model, probe_data, probe.truth.group_labels)
        rates = refusal_rates(prob_all, p_group, pairs, probe.truth)
        out["models"][f"{condition}/{head}"] = {"train_seconds": seconds, "rates": rates}
        print(f"seed {seed} {condition}/{head}: " + ", ".join(
            f"{lang} local-others {r['local_others']['model']:.2f} (truth {r['local_others']['truth']:.2f})"
            for lang, r in rates.items()), flush=True)
    return out


def summarize(study: HarmsConfig, per_seed: list[dict]) -> tuple[dict, dict[str, str]]:
    """Intervals over seeds of every rate; one markdown table per model."""
    summary, tables = {}, {}
    for name in per_seed[0]["models"]:
        languages = list(per_seed[0]["models"][name]["rates"])
        kinds = list(per_seed[0]["models"][name]["rates"][languages[0]])
        entry = {lang: {kind: {key: common.interval([s["models"][name]["rates"][lang][kind][key] for s in per_seed])
                               for key in ("model", "truth", "model_p", "truth_p", "n")}
                        for kind in kinds} for lang in languages}
        summary[name] = entry
        header = ["item language", "global: model", "global: truth", "local, holders: model",
                  "local, holders: truth", "local, others: model", "local, others: truth"]
        rows = []
        for lang in languages:
            mark = " (source)" if name.startswith("transfer") and lang == study.source_language else ""
            rows.append([lang + mark, *(common.fmt(entry[lang][k][w], 2) for k in KINDS for w in ("model", "truth"))])
        tables[name] = common.markdown_table(header, rows)
        categories = sorted({k.split(":")[1] for k in kinds if ":" in k})
        tables[f"{name} by local category"] = common.markdown_table(
            ["item language", *(f"category {h}, {who}: {w}" for h in categories for who in ("holders", "others")
                                for w in ("model", "truth"))],
            [[lang, *(common.fmt(entry[lang][f"local_{who}:{h}"][w], 2) for h in categories
                      for who in ("holders", "others") for w in ("model", "truth"))] for lang in languages])
    return summary, tables


def main(argv=None) -> int:
    args = common.parse_args("harms", __doc__, argv)
    return common.drive_seeds(args, HarmsConfig, run_seed, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
