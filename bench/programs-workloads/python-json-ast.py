"""Workload for bench/programs.mjs: CPython parsing its own standard library (ast) and
round-tripping the trees through json, run with PYTHONMALLOC=malloc so that every object
comes from the process's malloc. Prints only counts, so its output is the same under any
allocator."""
import ast, json, sys, os, collections

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.__file__)
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 60
names = sorted(n for n in os.listdir(root) if n.endswith('.py'))[:limit]

def to_plain(node):
    if isinstance(node, ast.AST):
        return {'_': type(node).__name__, **{k: to_plain(v) for k, v in ast.iter_fields(node)}}
    if isinstance(node, list):
        return [to_plain(x) for x in node]
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    return repr(node)

kinds = collections.Counter()
total = 0
for name in names:
    with open(os.path.join(root, name), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        kinds[type(node).__name__] += 1
    text = json.dumps(to_plain(tree))
    total += len(json.loads(text)['body'])
print(len(names), 'files', total, 'top-level statements')
for kind, count in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:15]:
    print(kind, count)
