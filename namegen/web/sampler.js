// namegen's sampler in JavaScript: one step of the network, the draw of a letter, and the rules every
// line of the data keeps, read from a `namegen export`. The one copy: `--to js` embeds it in an ES
// module, `--to html` in a page. No dependencies; runs in Node (18 or newer) and in browsers.
//
// The step, as namegen computes it (row vectors, H hidden units, V = letters + the boundary, id 0):
//   h_t = tanh(Wxh[x_t] + h_{t-1} Whh + bh + style term),   z_t = h_t Why + by,   p_t = softmax(z_t)
// with x_0 = 0 (start of name) and a name ending when id 0 (end of name) is drawn.

const BOUNDARY = 0;

// xoshiro128** (Blackman and Vigna), seeded by splitmix32: a small, well-tested generator that both
// Node and every browser compute the same way; uniform() has 53 random bits.
export class Random {
  constructor(seed) {
    const value = seed === undefined || seed === null ? randomSeed() : Number(seed);
    let x = value >>> 0; // the low 32 bits; the high ones (a seed of up to 2^53) go into the first word
    const split = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = [split() ^ Math.floor(value / 4294967296), split(), split(), split()];
  }

  next() {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  uniform() {
    return ((this.next() >>> 5) * 67108864 + (this.next() >>> 6)) / 9007199254740992; // [0, 1)
  }
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

function randomSeed() {
  if (!globalThis.crypto?.getRandomValues) return Math.floor(Math.random() * 4294967296); // Node 18 without --experimental-global-webcrypto
  const buffer = new Uint32Array(1);
  globalThis.crypto.getRandomValues(buffer);
  return buffer[0];
}

/** x . m[start .. start + n): four sums at a time, so that each add need not wait for the one before. */
function dot(x, m, start, n) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += x[i] * m[start + i];
    s1 += x[i + 1] * m[start + i + 1];
    s2 += x[i + 2] * m[start + i + 2];
    s3 += x[i + 3] * m[start + i + 3];
  }
  for (; i < n; i++) s0 += x[i] * m[start + i];
  return s0 + s1 + (s2 + s3);
}

function transposed(m, rows, columns) {
  const t = new Float64Array(rows * columns);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) t[c * rows + r] = m[r * columns + c];
  return t;
}

function decode(entry, dtype) {
  const bytes = Uint8Array.from(atob(entry.data), (c) => c.charCodeAt(0));
  const values = dtype === "float64" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
  return Float64Array.from(values); // computed in doubles whatever the export stores
}

const PAIRS = { "()": ["(", ")"], "[]": ["[", "]"], "{}": ["{", "}"], '""': ['"', '"'], "«»": ["«", "»"] };
const UPPER = /\p{Lu}/u;
const LETTER = /\p{L}/u;
const ALNUM = /[\p{L}\p{N}]/u;
const DIGIT = /\p{Nd}/u;

export class NameModel {
  constructor(data) {
    if (data.format !== "namegen-export") throw new Error("not a namegen export");
    this.data = data;
    this.chars = data.vocab;
    this.H = data.hidden_size;
    this.V = data.vocab.length + 1;
    for (const name of ["Wxh", "bh", "by"]) this[name] = decode(data.weights[name], data.dtype);
    // Whh and Why transposed: each output is then a dot product of two rows (see dot)
    this.WhhT = transposed(decode(data.weights.Whh, data.dtype), this.H, this.H);
    this.WhyT = transposed(decode(data.weights.Why, data.dtype), this.H, this.V);
    this.styles = data.styles.names;
    this.B = this.styles.length ? decode(data.weights.B, data.dtype) : null;
    this.known = new Set(data.names || []);
    this.ids = new Map(this.chars.map((c, i) => [c, i + 1]));
  }

  /** One step: the hidden state after letter x from h, and the logits of the next letter. */
  step(h, x, bias) {
    const { H, V, Wxh, WhhT, bh, WhyT, by } = this;
    const a = new Float64Array(H);
    for (let j = 0; j < H; j++) a[j] = Math.tanh(Wxh[x * H + j] + bh[j] + bias[j] + dot(h, WhhT, j * H, H));
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) z[v] = by[v] + dot(a, WhyT, v * H, H);
    return [a, z];
  }

  /** The style term of style weights w (one per style): (w B), or zeros. */
  styleTerm(weights) {
    const term = new Float64Array(this.H);
    if (!this.B) return term;
    weights.forEach((w, k) => {
      for (let j = 0; j < this.H; j++) term[j] += w * this.B[k * this.H + j];
    });
    return term;
  }

  /** A letter id drawn from softmax(z / temperature) over the topK likeliest, then the nucleus topP. */
  static draw(z, u, noEnd, temperature, topK, topP) {
    const w = Array.from(z);
    if (noEnd) w[BOUNDARY] = -Infinity;
    if (topK > 0 && topK < w.length) {
      const kth = [...w].sort((a, b) => b - a)[topK - 1];
      for (let v = 0; v < w.length; v++) if (w[v] < kth) w[v] = -Infinity;
    }
    const top = Math.max(...w);
    let total = 0;
    for (let v = 0; v < w.length; v++) total += (w[v] = Math.exp((w[v] - top) / temperature));
    if (topP < 1) {
      const order = w.map((x, v) => v).sort((a, b) => w[b] - w[a] || a - b);
      let before = 0;
      const kept = new Float64Array(w.length);
      for (const v of order) {
        if (before < topP * total) kept[v] = w[v];
        before += w[v];
      }
      total = 0;
      for (let v = 0; v < w.length; v++) total += (w[v] = kept[v]);
    }
    const scaled = u * total;
    let sum = 0;
    for (let v = 0; v < w.length; v++) {
      sum += w[v];
      if (sum > scaled && w[v] > 0) return v;
    }
    return w.findLastIndex((x) => x > 0);
  }

  /** Names as `namegen sample` draws them, each passing the rules of the data and the constraints. */
  sample({ count = 10, temperature = 1, topK = 0, topP = 1, prefix = "", suffix = "", contains = [],
           exclude = [], minLength = 1, maxLength = 0, style = null, novel = false, unique = false,
           seed = null, maxTries = 0 } = {}) {
    if (!(temperature > 0)) throw new Error("temperature must be above 0");
    const rng = new Random(seed);
    const letters = (text) => this.clean(text, true);
    const start = letters(prefix);
    for (const c of start) if (!this.ids.has(c)) throw new Error(`the prefix holds ${JSON.stringify(c)}, which the model never saw`);
    const end = letters(suffix), must = contains.map(letters), banned = exclude.map(letters).filter((t) => t);
    const longest = maxLength || Math.max(this.data.max_length, start.length, minLength);
    const weights = style === null ? null : this.styleWeights(style);
    const budget = maxTries || Math.max(100000, 100 * count);
    const found = [], taken = new Set();
    for (let tries = 0; found.length < count && tries < budget; tries++) {
      const name = this.drawName(rng, start, longest, minLength, weights, temperature, topK, topP, banned);
      if (name === null || this.unlikeData(name) || !name.endsWith(end) || !must.every((t) => name.includes(t))
          || banned.some((t) => name.includes(t)) || (novel && this.known.has(name)) || (unique && taken.has(name))) continue;
      taken.add(name);
      found.push(this.display(name));
    }
    return found;
  }

  drawName(rng, start, longest, minLength, weights, temperature, topK, topP, banned) {
    const shares = this.styles.length && weights === null ? this.data.styles.shares : null;
    let w = weights;
    if (shares) { // each name in one list's style, as often as the list's names
      const u = rng.uniform();
      let k = 0;
      for (let sum = shares[0]; sum <= u && k < shares.length - 1; sum += shares[++k]);
      w = shares.map((_, i) => (i === k ? 1 : 0));
    }
    const bias = this.styleTerm(w || []);
    let [h, z] = this.step(new Float64Array(this.H), BOUNDARY, bias);
    let name = "";
    for (const c of start) {
      [h, z] = this.step(h, this.ids.get(c), bias);
      name += c;
    }
    for (let length = start.length; length <= longest; length++) {
      const id = NameModel.draw(z, rng.uniform(), length < minLength, temperature, topK, topP);
      if (id === BOUNDARY) return name;
      if (length === longest) return null;
      name += this.chars[id - 1];
      if (banned.some((t) => name.endsWith(t))) return null; // stopped at the letter that completes it
      [h, z] = this.step(h, id, bias);
    }
    return null;
  }

  styleWeights(style) {
    const weights = this.styles.map(() => 0);
    for (const part of String(style).split(",")) {
      const [name, value] = part.split("=").map((s) => s.trim());
      const k = this.styles.indexOf(name);
      if (k < 0) throw new Error(`${name} is not one of this model's styles: ${this.styles.join(", ")}`);
      weights[k] += value === undefined ? 1 : Number(value);
    }
    const total = weights.reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new Error("style weights must not all be 0");
    return weights.map((x) => x / total);
  }

  /** A name as the data's names were cleaned: spaces collapsed, NFC, lower case unless kept. */
  clean(text, isPrefix = false) {
    let name = String(text).normalize("NFC").replace(/\s+/gu, " ");
    name = isPrefix ? name.replace(/^\s+/u, "") : name.trim();
    return this.data.case === "keep" ? name : name.toLowerCase();
  }

  /** Why a drawn name could never be a line of the data (see namegen/rules.py), or null. */
  unlikeData(name) {
    const rules = this.data.rules;
    if (!name || this.clean(name) !== name) return "not_clean"; // as Python's: spaces, NFC, case
    const first = name[0], last = name[name.length - 1];
    if (!(ALNUM.test(first) || rules.starts.includes(first)) || !(ALNUM.test(last) || rules.ends.includes(last))) return "odd_edge";
    for (const pair of rules.balanced) {
      const [open, close] = PAIRS[pair];
      let depth = 0, ok = true;
      for (const c of name) {
        if (open === close) { if (c === open) depth ^= 1; continue; }
        depth += (c === open) - (c === close);
        if (depth < 0) ok = false;
      }
      if (!ok || depth !== 0) return "unbalanced";
    }
    const chars = Array.from(name);
    for (let i = 0; i < chars.length; i++) {
      if (!UPPER.test(chars[i])) continue;
      const before = i ? chars[i - 1] : " ";
      const place = /\s/u.test(before) || (!ALNUM.test(before) && !"'’-".includes(before)) ? "start"
        : "'’-".includes(before) ? "after mark" : "inside";
      if (!rules.capital_places.includes(place)) return "capital";
    }
    for (const word of name.split(" ")) {
      const c = word[0];
      const kind = LETTER.test(c) ? "letter" : DIGIT.test(c) ? "digit" : "mark";
      if (!rules.word_starts.includes(kind)) return "word_start";
    }
    return null;
  }

  /** A name as it is shown: with capitals where the data had them (see namegen/data.py: capitalised). */
  display(name) {
    const capitals = this.data.capitals;
    const chars = Array.from(name);
    return chars.map((c, i) => {
      const context = i === 0 ? "start" : ALNUM.test(chars[i - 1]) ? null : chars[i - 1];
      const upper = c.toUpperCase();
      return context !== null && capitals.includes(context) && upper.length === 1 && upper.toLowerCase() === c ? upper : c;
    }).join("");
  }
}
