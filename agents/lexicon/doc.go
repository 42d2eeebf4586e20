// Package lexicon reads CRM field names the way a person does: it strips
// the systems' decorations (Salesforce's "__c" and namespaces, HubSpot's
// "hs_", Dynamics' "_..._value" and publisher prefixes), splits camelCase,
// snake_case and run-together words ("numberofemployees"), folds
// synonyms into concepts (amount/value/price, stage/status/phase, ...) and
// scores how alike two names are.
//
// Contract and invariants: every function is pure, deterministic and safe
// for concurrent use; similarities are in [0, 1], symmetric, and 1 for
// names that differ only in case, separators or decorations. The
// vocabulary is an explicit table in this package, not learned state.
package lexicon
