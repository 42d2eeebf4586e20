package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// docsScript renders /openapi.json in the browser; it builds DOM nodes with
// textContent only (nothing from the document is parsed as HTML) and loads
// nothing from anywhere but this server.
const docsScript = `
(function () {
  var root = document.getElementById('app');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function resolve(spec, s) {
    if (s && s.$ref) {
      var name = s.$ref.split('/').pop();
      return { name: name, schema: (spec.components.schemas || {})[name] || {} };
    }
    return { name: null, schema: s || {} };
  }
  function typeText(s) {
    if (!s) return '';
    if (s.$ref) return s.$ref.split('/').pop();
    var t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type || '');
    if (s.enum) t += ' (' + s.enum.join(', ') + ')';
    if (s.format) t += ' <' + s.format + '>';
    if (t === 'array' && s.items) t = typeText(s.items) + '[]';
    return t;
  }
  function schemaTree(spec, s, depth, seen) {
    var r = resolve(spec, s), box = el('div', 'schema');
    if (r.name) {
      if (seen.indexOf(r.name) >= 0 || depth > 4) { box.appendChild(el('code', '', r.name)); return box; }
      seen = seen.concat([r.name]);
      box.appendChild(el('div', 'schema-name', r.name));
    }
    var sc = r.schema;
    if (sc.description) box.appendChild(el('div', 'desc', sc.description));
    if (sc.properties) {
      var req = sc.required || [], tbl = el('table');
      Object.keys(sc.properties).sort().forEach(function (k) {
        var p = sc.properties[k], tr = el('tr');
        tr.appendChild(el('td', 'prop', k + (req.indexOf(k) >= 0 ? ' *' : '')));
        var td = el('td');
        td.appendChild(el('code', '', typeText(p)));
        var inner = resolve(spec, p.items || p);
        if (inner.name || (inner.schema.properties && depth < 4)) td.appendChild(schemaTree(spec, p.items || p, depth + 1, seen));
        else if (p.description) td.appendChild(el('div', 'desc', p.description));
        tr.appendChild(td);
        tbl.appendChild(tr);
      });
      box.appendChild(tbl);
    } else if (!r.name) {
      box.appendChild(el('code', '', typeText(sc)));
    }
    return box;
  }
  function render(spec) {
    root.textContent = '';
    root.appendChild(el('h1', '', spec.info.title + ' ' + spec.info.version));
    root.appendChild(el('p', 'desc', spec.info.description));
    var byTag = {};
    Object.keys(spec.paths).sort().forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (method) {
        var op = spec.paths[path][method], tag = (op.tags || ['other'])[0];
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method, op: op });
      });
    });
    (spec.tags || []).forEach(function (t) {
      var ops = byTag[t.name];
      if (!ops) return;
      root.appendChild(el('h2', '', t.name + ' — ' + (t.description || '')));
      ops.forEach(function (o) {
        var d = el('details', 'op');
        var sum = el('summary');
        sum.appendChild(el('span', 'method ' + o.method, o.method.toUpperCase()));
        sum.appendChild(el('code', 'path', o.path));
        sum.appendChild(el('span', 'sum', o.op.summary || ''));
        if (o.op.security && o.op.security.length) sum.appendChild(el('span', 'lock', 'token'));
        d.appendChild(sum);
        if (o.op.description) d.appendChild(el('p', 'desc', o.op.description));
        var params = o.op.parameters || [];
        if (params.length) {
          d.appendChild(el('h4', '', 'Parameters'));
          var tbl = el('table');
          params.forEach(function (p) {
            var tr = el('tr');
            tr.appendChild(el('td', 'prop', p.name + (p.required ? ' *' : '')));
            tr.appendChild(el('td', '', p.in));
            tr.appendChild(el('td', '', typeText(p.schema)));
            tr.appendChild(el('td', 'desc', p.description || ''));
            tbl.appendChild(tr);
          });
          d.appendChild(tbl);
        }
        if (o.op.requestBody) {
          d.appendChild(el('h4', '', 'Request body'));
          Object.keys(o.op.requestBody.content).forEach(function (ct) {
            d.appendChild(el('div', 'ct', ct));
            d.appendChild(schemaTree(spec, o.op.requestBody.content[ct].schema, 0, []));
          });
        }
        d.appendChild(el('h4', '', 'Responses'));
        Object.keys(o.op.responses).sort().forEach(function (code) {
          var r = o.op.responses[code], row = el('div', 'resp');
          row.appendChild(el('span', 'code c' + code[0], code));
          row.appendChild(el('span', '', ' ' + (r.description || '')));
          d.appendChild(row);
          if (r.content && code[0] === '2') {
            Object.keys(r.content).forEach(function (ct) {
              d.appendChild(el('div', 'ct', ct));
              d.appendChild(schemaTree(spec, r.content[ct].schema, 0, []));
            });
          }
        });
        root.appendChild(d);
      });
    });
  }
  fetch('/openapi.json').then(function (r) { return r.json(); }).then(render).catch(function (e) {
    root.textContent = 'Cannot load /openapi.json: ' + e;
  });
})();
`

const docsStyle = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#1d2330}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #dde;text-transform:capitalize}
.desc{color:#4a5263}.op{border:1px solid #dde;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer;display:flex;gap:.8rem;align-items:center}
.method{font-weight:700;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;padding:.1rem .3rem}
.get{background:#2f7d4a}.post{background:#2457a8}.put{background:#a8702a}.delete{background:#a82a2a}.patch{background:#6b3fa0}
.lock{margin-left:auto;font-size:12px;color:#6b7180;border:1px solid #ccd;border-radius:4px;padding:0 .3rem}
table{border-collapse:collapse;margin:.3rem 0}td{border-top:1px solid #eef;padding:.2rem .6rem;vertical-align:top}
.prop{font-family:ui-monospace,monospace}.schema{margin-left:.6rem}.schema-name{font-weight:600}
.ct{font-size:12px;color:#6b7180;margin-top:.4rem}.resp{margin:.15rem 0}.code{font-family:ui-monospace,monospace;font-weight:700}
.c2{color:#2f7d4a}.c4{color:#a8702a}.c5{color:#a82a2a}code{background:#f3f4f8;padding:0 .2rem;border-radius:3px}
`

var (
	docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>AutonomOS API</title><style>` + docsStyle + `</style></head>
<body><div id="app">Loading <a href="/openapi.json">/openapi.json</a>…</div>
<script>` + docsScript + `</script></body></html>
`
	docsCSP = func() string {
		sum := func(s string) string {
			h := sha256.Sum256([]byte(s))
			return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
		}
		return strings.Join([]string{
			"default-src 'none'",
			"script-src " + sum(docsScript),
			"style-src " + sum(docsStyle),
			"connect-src 'self'",
			"frame-ancestors 'none'",
			"base-uri 'none'",
		}, "; ")
	}()
)

// handleDocs serves a self-contained page rendering /openapi.json (no CDN:
// the script and style are inline, pinned by hash in the CSP).
func (s *Server) handleDocs(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTML(http.StatusOK, docsPage)
}
