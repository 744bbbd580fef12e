"""The edge: parse a request, call the layers below, render the answer. Only here and in
`middleware/` do exceptions become responses."""
