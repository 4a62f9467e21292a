"""A cold item recommended through its text: items of four genres, users who like one genre,
and 16 new items nobody has rated yet. MatrixFactorization learns the warm items; TextCNN learns
to predict an item's factors from its words; the new items get factors from their words and are
recommended to the users of their genre.

    python examples/cold_start_items.py
"""

import numpy as np

import recfast
from recfast.models import add_items

rng = np.random.default_rng(0)
n_users, n_items, n_cold, genres, words_per_genre, length = 200, 160, 16, 4, 12, 10
genre = np.arange(n_items) % genres
taste = np.arange(n_users) % genres
# An item's text: 60% words of its genre, the rest shared filler words.
own = genre[:, None] * words_per_genre + rng.integers(0, words_per_genre, (n_items, length))
filler = genres * words_per_genre + rng.integers(0, 8, (n_items, length))
tokens = np.where(rng.random((n_items, length)) < 0.6, own, filler)
vocab = genres * words_per_genre + 8

# Ratings of the warm items only: 5 for the user's genre, 1 otherwise.
warm = n_items - n_cold
users, items = np.nonzero(rng.random((n_users, warm)) < 0.3)
ratings = np.where(taste[users] == genre[items], 5.0, 1.0).astype(np.float32)
mf = recfast.MatrixFactorization(factors=8, epochs=40, random_state=0).fit((users, items, ratings))

# Text -> [factors, bias], learned on the warm items, applied to the cold ones.
targets = np.column_stack([mf.item_factors_, mf.item_bias_])
encoder = recfast.TextCNN(vocab_size=vocab, epochs=60, random_state=0).fit(tokens[:warm], targets)
predicted = encoder.predict(tokens[warm:])
cold_ids = add_items(mf, predicted[:, :-1], predicted[:, -1])

# Recommend among the cold items only: does each user get one of their genre?
scores = mf.user_factors_ @ mf.item_factors_[cold_ids].T + mf.item_bias_[cold_ids]
best = cold_ids[scores.argmax(axis=1)]
share = np.mean(genre[best] == taste)
print(f"users whose top new item is of their genre: {share:.0%} (chance: {1 / genres:.0%})")
print(
    "user 0 (genre 0) gets new items",
    mf.recommend(0, n=3)[0][0],
    "of genres",
    genre[mf.recommend(0, n=3)[0][0]],
)
