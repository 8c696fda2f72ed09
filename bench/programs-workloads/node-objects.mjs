// Workload for bench/programs.mjs: node building objects, strings and Buffers, round-tripping
// them through JSON, and compressing in parallel on libuv's thread pool (zlib's native state
// lives in malloc, on the pool's threads). Output: sizes and a checksum only.
import { gzip, gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';

const rounds = Number(process.argv[2] ?? 8);
const gz = promisify(gzip);
const hash = createHash('sha256');
let bytes = 0;
for (let round = 0; round < rounds; round++) {
  const rows = [];
  for (let i = 0; i < 40000; i++) {
    rows.push({ id: i, name: `row-${round}-${i}`, tags: [i % 7, i % 11, `t${i % 13}`], v: (i * 2654435761) % 1000003 });
  }
  const text = JSON.stringify(rows);
  const back = JSON.parse(text);
  const chunks = [];
  for (let i = 0; i < back.length; i += 5000) chunks.push(Buffer.from(JSON.stringify(back.slice(i, i + 5000))));
  const packed = await Promise.all(chunks.map((c) => gz(c, { level: 6 })));
  for (const p of packed) {
    const out = gunzipSync(p);
    bytes += out.length;
    hash.update(out);
  }
}
console.log(rounds, 'rounds', bytes, 'bytes', hash.digest('hex'));
