"""The soups: uniform (every ingredient), greedy (Model soups, Wortsman et al. 2022: the
ingredients best first on val, each kept only if the soup's val accuracy does not drop) and
WiSE-FT (Wortsman et al. 2022: the fine-tuned weights interpolated with the pretrained ones).

Each returns the weights, their val figures, and soup.json's record of how they were made.
"""

from src.soups.average import RunningSum, Weights, interpolate, mapped_weights
from src.soups.ingredients import Ingredient
from src.soups.tasting import Taste, Tasting


def taste_each(ingredients: list[Ingredient], tasting: Tasting) -> None:
    """Every ingredient's own val accuracy (its own batch-norm statistics), one at a time."""
    for ingredient in ingredients:
        weights, _ = mapped_weights(ingredient.checkpoint)
        ingredient.val_acc = tasting.taste(dict(weights), recompute_batch_norm=False).accuracy


def uniform(ingredients: list[Ingredient], tasting: Tasting) -> tuple[Weights, Taste, dict]:
    pot = RunningSum()
    for ingredient in ingredients:
        pot.add(mapped_weights(ingredient.checkpoint)[0])
    weights = pot.average()
    taste = tasting.taste(weights, recompute_batch_norm=pot.count > 1)
    entries = [{**i.record(), "in_soup": True} for i in ingredients]
    return weights, taste, _record("uniform", entries, taste, tasting)


def greedy(ingredients: list[Ingredient], tasting: Tasting) -> tuple[Weights, Taste, dict]:
    """Never worse on val than the best ingredient: it starts as that one, and an ingredient
    that lowers the val accuracy is left out (ties are kept: a flatter average)."""
    ranked = sorted(ingredients, key=lambda ingredient: ingredient.val_acc, reverse=True)
    pot = RunningSum()
    pot.add(mapped_weights(ranked[0].checkpoint)[0])
    weights = pot.average()
    taste = tasting.taste(weights, recompute_batch_norm=False)
    kept = {id(ranked[0])}
    for ingredient in ranked[1:]:
        added, _ = mapped_weights(ingredient.checkpoint)
        candidate = pot.average_with(added)
        tried = tasting.taste(candidate, recompute_batch_norm=True)
        if tried.accuracy >= taste.accuracy:
            pot.add(added)
            weights, taste = candidate, tried
            kept.add(id(ingredient))
    entries = [{**i.record(), "in_soup": id(i) in kept} for i in ranked]
    return weights, taste, _record("greedy", entries, taste, tasting)


def wise(
    ingredient: Ingredient,
    pretrained: Weights,
    interpolated_keys: set[str],
    alphas: list[float],
    tasting: Tasting,
) -> tuple[Weights, Taste, dict]:
    """The alpha of `alphas` best on val (the first of equals); the keys not in
    `interpolated_keys` (the new head) stay as trained at every alpha."""
    finetuned, _ = mapped_weights(ingredient.checkpoint)
    best = None
    tasted = []
    for alpha in alphas:
        weights = interpolate(pretrained, finetuned, alpha, interpolated_keys)
        # Alpha 1 is the run itself, its statistics its own; between, an average's.
        taste = tasting.taste(weights, recompute_batch_norm=alpha != 1)
        tasted.append({"alpha": alpha, **taste.figures()})
        if best is None or taste.accuracy > best[2].accuracy:
            best = (alpha, weights, taste)
    alpha, weights, taste = best
    entries = [{**ingredient.record(), "in_soup": True}]
    record = _record("wise", entries, taste, tasting)
    record.update(alpha=alpha, alphas=tasted, interpolated=sorted(interpolated_keys))
    return weights, taste, record


def _record(kind: str, entries: list[dict], taste: Taste, tasting: Tasting) -> dict:
    if not tasting.has_batch_norm:
        norms = "the model has no batch norm"
    elif taste.batch_norm_batches:
        norms = f"recomputed on {taste.batch_norm_batches} training batches, without augmentation"
    else:
        norms = "the one ingredient's own"
    return {"kind": kind, "ingredients": entries, "batch_norm": norms}
