"""Vocabulary of the simulated shop: categories, brand names and item titles.

Titles carry signal a sentence encoder can pick up for cold-start items: the category noun,
the brand, a price tier word from the item's price within its category, a quality word for
unusually good or bad items, and style adjectives chosen from the item's latent taste vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    name: str
    base_price: float
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("running_shoes", 95.0, ("trail running shoes", "road running shoes", "racing flats")),
    Category("headphones", 120.0, ("wireless headphones", "earbuds", "over-ear headphones")),
    Category("laptops", 900.0, ("ultrabook laptop", "gaming laptop", "2-in-1 laptop")),
    Category("coffee", 80.0, ("coffee maker", "espresso machine", "pour-over kettle")),
    Category("backpacks", 70.0, ("hiking backpack", "laptop backpack", "daypack")),
    Category("jackets", 130.0, ("rain jacket", "down jacket", "fleece jacket")),
    Category("watches", 200.0, ("smartwatch", "dive watch", "field watch")),
    Category("skincare", 30.0, ("face moisturizer", "vitamin c serum", "sunscreen lotion")),
    Category("cookware", 80.0, ("cast iron skillet", "nonstick pan", "dutch oven")),
    Category("books", 18.0, ("mystery novel", "cookbook", "science fiction novel")),
    Category("toys", 35.0, ("building blocks set", "jigsaw puzzle", "plush toy")),
    Category("furniture", 250.0, ("office chair", "bookshelf", "standing desk")),
    Category("camping", 110.0, ("camping tent", "sleeping bag", "camp stove")),
    Category("cameras", 700.0, ("mirrorless camera", "action camera", "instant camera")),
    Category("fitness", 50.0, ("yoga mat", "adjustable dumbbells", "resistance bands")),
    Category("bedding", 90.0, ("duvet cover", "pillow set", "weighted blanket")),
    Category("phone_accessories", 25.0, ("phone case", "fast charger", "power bank")),
    Category("gardening", 40.0, ("pruning shears", "raised garden bed", "watering can")),
    Category("pet_supplies", 35.0, ("dog bed", "cat tree", "automatic pet feeder")),
    Category("jewelry", 150.0, ("silver necklace", "gold earrings", "charm bracelet")),
)

STYLE_WORDS: tuple[str, ...] = (
    "waterproof", "lightweight", "compact", "wireless", "vintage", "minimalist",
    "ergonomic", "organic", "classic", "sporty", "rugged", "sleek",
    "colorful", "eco-friendly", "smart", "cozy",
)  # fmt: skip

PRICE_TIERS: tuple[str, ...] = ("budget", "everyday", "premium", "luxury")

_BRAND_ONSETS = (
    "Ka", "Ve", "Lo", "Tri", "Mar", "Zen", "Ar", "No", "Qui", "Sol",
    "Bra", "El", "Fen", "Ori", "Pax", "Ru", "Sta", "Tho", "Vy", "Wen",
)  # fmt: skip
_BRAND_CODAS = (
    "ra", "lix", "vo", "den", "tek", "ora", "ix", "el",
    "ano", "ist", "on", "ara", "ium", "ex", "ly", "ova",
)  # fmt: skip
MAX_BRANDS_PER_CATEGORY = len(_BRAND_ONSETS) * len(_BRAND_CODAS) // len(CATEGORIES)


def brand_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct invented brand names (never real brands)."""
    names = [onset + coda for onset in _BRAND_ONSETS for coda in _BRAND_CODAS]
    if count > len(names):
        raise ValueError(f"at most {len(names)} brand names are available; asked for {count}")
    return [names[i] for i in rng.permutation(len(names))[:count]]


def price_tiers(prices: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Index into PRICE_TIERS of each item: its price quartile within its category."""
    tiers = np.zeros(len(prices), dtype=np.int64)
    for category in np.unique(categories):
        members = np.flatnonzero(categories == category)
        cuts = np.quantile(prices[members], [0.25, 0.5, 0.75])
        tiers[members] = np.searchsorted(cuts, prices[members], side="right")
    return tiers


def item_titles(
    *,
    categories: np.ndarray,
    brand_of_item: list[str],
    prices: np.ndarray,
    quality: np.ndarray,
    latent: np.ndarray,
    style_directions: np.ndarray,
    rng: np.random.Generator,
) -> list[str]:
    """One title per item, e.g. 'top-rated premium waterproof rugged camping tent by Solra'."""
    tiers = price_tiers(prices, categories)
    noise = rng.gumbel(size=(len(prices), len(STYLE_WORDS)))
    style_scores = latent @ style_directions.T + 0.3 * noise
    top_styles = np.argsort(-style_scores, axis=1)[:, :2]
    noun_choice = rng.integers(0, 3, size=len(prices))
    high, low = np.quantile(quality, [0.85, 0.15])
    titles = []
    for i, category in enumerate(categories):
        words = []
        if quality[i] >= high:
            words.append("top-rated")
        elif quality[i] <= low:
            words.append("basic")
        words.append(PRICE_TIERS[tiers[i]])
        words.extend(STYLE_WORDS[s] for s in top_styles[i])
        words.append(CATEGORIES[category].nouns[noun_choice[i]])
        titles.append(" ".join(words) + f" by {brand_of_item[i]}")
    return titles
