/** Where this package is installed: lib/ in the source tree, dist/cjs/ when built. */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

export function packageRoot(): string {
  let dir = __dirname
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}
