# Parses and walks a stdlib module: ast nodes, dicts, lists and strings of many small sizes.
import ast, collections, os, sys
stdlib = os.path.dirname(os.__file__)
names = ["colorsys", "keyword"]
counts = collections.Counter()
for name in names:
    source = open(os.path.join(stdlib, name + ".py"), encoding="utf-8").read()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        counts[type(node).__name__] += 1
    del tree
print(sum(counts.values()), "nodes;", counts.most_common(3), file=sys.stderr)
