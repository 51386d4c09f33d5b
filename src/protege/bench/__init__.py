"""`protege bench`: the default benchmark and the comparison matrices (tasks x arms x training seeds),
with the machine line every timing is reported with."""
