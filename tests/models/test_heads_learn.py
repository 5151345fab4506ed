"""Each head learns what it claims, on a simulated society whose truth is known.

Features are the responses' true value profiles (an embedding table), so these tests isolate the
heads from the text backbone; tests/train and the experiments cover the text path.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

from pluralrm.models.adapt import adapt_annotator, annotator_responsibilities
from pluralrm.train import fit, load_config

sys.path.insert(0, str(Path(__file__).parent))
from society_helpers import frozen_overrides, society, split_by_item  # noqa: E402

pytestmark = pytest.mark.slow
MINORITIES = ("country=NG,language=yo", "country=EG,language=ar")


def train_head(tmp_path, table, train, test, head, *extra, steps=500):
    config = load_config(None, [*frozen_overrides(table, head, steps), f"run_dir={tmp_path / head}", *extra])
    model, result = fit(config, train, test)
    return model, {g["group"]: g["accuracy"] for g in result.eval_metrics[-1]["groups"]}


def test_conditioned_and_per_group_recover_minorities(tmp_path):
    result, table = society(tmp_path, heterogeneity=1.0)
    train, test, _ = split_by_item(result.data)
    acc = {h: train_head(tmp_path, table, train, test, h)[1] for h in ("pooled", "conditioned", "per_group")}
    for head, groups in acc.items():
        print(head, {g.split(",")[0]: round(a, 3) for g, a in groups.items()})
    print("Bayes (group-aware):", round(result.summary()["bayes_accuracy_group"], 3))
    for group in MINORITIES:
        for head in ("conditioned", "per_group"):
            assert acc[head][group] > acc["pooled"][group] + 0.05, (head, group, acc)
    bayes = result.summary()["bayes_accuracy_group"]
    assert acc["conditioned"]["all"] > bayes - 0.05


def test_homogeneous_society_costs_nothing(tmp_path):
    result, table = society(tmp_path, heterogeneity=0.0)
    train, test, _ = split_by_item(result.data)
    acc = {h: train_head(tmp_path, table, train, test, h)[1]["all"] for h in ("pooled", "conditioned", "per_group")}
    print("homogeneous society, overall accuracy:", {h: round(a, 3) for h, a in acc.items()})
    assert acc["conditioned"] > acc["pooled"] - 0.02 and acc["per_group"] > acc["pooled"] - 0.02, acc


def _planted_country(annotator: str) -> str:
    return annotator.split("-")[0]


def test_mixture_recovers_latent_groups_and_adapts_few_shot(tmp_path):
    result, table = society(tmp_path, heterogeneity=1.5, hide_groups=True, comparisons=16_000, countries=4,
                            languages=2, language_names=("en", "es"), group_proportions=(0.3, 0.3, 0.2, 0.2))
    data = result.data
    annotators = sorted(set(data["annotator_id"]))
    rng = np.random.default_rng(0)
    new = set(rng.choice(annotators, 12, replace=False).tolist())
    is_new = np.array([a in new for a in data["annotator_id"]])
    known = data.select(np.flatnonzero(~is_new))
    train, test, _ = split_by_item(known)
    model, acc = train_head(tmp_path, table, train, test, "mixture", "model.head.num_prototypes=4",
                            "model.head.annotator_shrinkage=0.001", steps=1200)
    head = model.net.head
    logits = np.asarray(head.annotators.table.embedding[...])[1:] + np.asarray(head.logits[...])
    planted = [_planted_country(a) for a in model.annotators]
    ari = adjusted_rand_score(planted, logits.argmax(axis=1))
    names, post = annotator_responsibilities(model, train)
    ari_em = adjusted_rand_score([_planted_country(a) for a in names], post.argmax(axis=1))
    chance = [adjusted_rand_score(planted, rng.permutation(logits.argmax(axis=1))) for _ in range(50)]
    print(f"ARI mixing weights {ari:.3f}, EM responsibilities {ari_em:.3f}, chance {np.mean(chance):.3f}")
    assert ari > 0.45 and ari_em > 0.45 and ari > np.max(chance) + 0.3, (ari, ari_em, chance)

    # few-shot: a new annotator's accuracy with n of their comparisons, vs none
    newcomers = data.select(np.flatnonzero(is_new))
    gains = {}
    for n_shot in (0, 10):
        accs = []
        for a in sorted(new):
            rows = [i for i, x in enumerate(newcomers["annotator_id"]) if x == a]
            fit_rows, eval_rows = rows[:10], rows[10:]
            take = fit_rows[:n_shot]
            sub = newcomers.select(take)
            adapted = adapt_annotator(model, sub["prompt"], sub["chosen"], sub["rejected"])
            ev = newcomers.select(eval_rows)
            p = adapted.predict_preference(ev["prompt"], ev["chosen"], ev["rejected"])
            accs.append(np.mean(p > 0.5))
        gains[n_shot] = float(np.mean(accs))
    full = acc["all"]  # known annotators, held-out items
    print(f"few-shot accuracy of new annotators: 0 comparisons {gains[0]:.3f}, 10 comparisons {gains[10]:.3f}; "
          f"known annotators {full:.3f}")
    assert gains[10] > gains[0] + 0.05, gains
    assert gains[10] - gains[0] > 0.6 * (full - gains[0]), (gains, full)


def test_distributional_spread_ranks_within_group_disagreement(tmp_path):
    result, table = society(tmp_path, heterogeneity=1.0, within_noise=1.0)
    train, test, is_test = split_by_item(result.data)
    model, _ = train_head(tmp_path, table, train, test, "distributional", steps=800)
    import jax.numpy as jnp

    from pluralrm.data.featurize import pair_inputs

    n = 2000
    inputs = pair_inputs(model.featurizer, test["prompt"][:n], test["chosen"][:n], test["rejected"][:n])
    f_c, f_r = model.net.pair_features({k: jnp.asarray(v) for k, v in inputs.items()})
    group_ids = jnp.asarray(model.schema.encode({a: test[a][:n] for a in model.schema.attributes}))
    predicted = np.asarray(model.net.head.pair_spread(f_c, f_r, group_ids))
    truth = result.truth
    rows = np.flatnonzero(is_test)[:n]
    true_spread = np.linalg.norm(truth.profile("chosen")[rows].astype(float) - truth.profile("rejected")[rows], axis=1)
    rho = spearmanr(predicted, true_spread).statistic
    print(f"distributional: Spearman of predicted pair spread vs true within-group spread {rho:.3f}")
    assert rho > 0.5, rho
