/** Runs the command line in-process and collects what it writes. */
import { main, type CliIo } from '../../lib/cli/main'

export interface Run {
  code: number
  stdout: string
  stderr: string
}

export async function run(argv: string[], options: { isTTY?: boolean; color?: boolean } = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io: CliIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    isTTY: options.isTTY ?? false,
    columns: 100,
    color: options.color ?? false,
  }
  const code = await main(argv, io)
  return { code, stdout, stderr }
}

/** A small tag-balance check: every element closes, in order, under one <svg> root. */
export function wellFormedSvg(svg: string): boolean {
  const stack: string[] = []
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match
    if (selfClosing) continue
    if (closing) {
      if (stack.pop() !== name) return false
    } else {
      stack.push(name)
    }
  }
  // A bare < or & in text breaks the whole document in a browser.
  if (/<(?![a-zA-Z/!?])|&(?!(amp|lt|gt|quot|#\d+|#39);)/.test(svg)) return false
  return stack.length === 0 && svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.trimEnd().endsWith('</svg>')
}
