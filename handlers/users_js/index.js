// A "GET /users"-style Node.js handler, written as for Lambda behind API Gateway:
// the answer is {statusCode, headers, body} with body a JSON string.
//
//   sluice invoke users-js '{}'                                  every user
//   sluice invoke users-js '{"pathParameters": {"id": "2"}}'     one user, or a 404
//   sluice invoke users-js '{"queryStringParameters": {"role": "admin"}}'

// Module scope runs once per worker (the cold start); invocations reuse it.
const users = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', role: 'admin' },
  { id: 2, name: 'Alan Turing', email: 'alan@example.com', role: 'user' },
  { id: 3, name: 'Grace Hopper', email: 'grace@example.com', role: 'admin' },
];

const json = (statusCode, value) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

exports.handler = async (event, context) => {
  const id = event && event.pathParameters && event.pathParameters.id;
  if (id !== undefined) {
    const user = users.find((u) => String(u.id) === String(id));
    console.log(`GET /users/${id} (request ${context.awsRequestId}):`, user ? 'found' : 'not found');
    return user ? json(200, user) : json(404, { message: `no user ${id}` });
  }
  const role = event && event.queryStringParameters && event.queryStringParameters.role;
  const list = role ? users.filter((u) => u.role === role) : users;
  console.log(`GET /users (request ${context.awsRequestId}): ${list.length} users`);
  return json(200, list);
};
