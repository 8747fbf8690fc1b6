// docbot sign-in: posts to the page's /login (which sets the session cookie), then opens the chat page.
"use strict";
document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const problem = document.getElementById("problem");
  problem.textContent = "";
  const body = new URLSearchParams(new FormData(event.target));
  let response;
  try {
    response = await fetch("login", { method: "POST", body, credentials: "same-origin" });
  } catch {
    problem.textContent = "docbot cannot be reached; try again in a moment.";
    return;
  }
  if (response.ok) {
    window.location.assign("./");
  } else if (response.status === 429) {
    problem.textContent = `Too many failed sign-ins from here: try again in ${response.headers.get("Retry-After")} s.`;
  } else {
    problem.textContent = "Wrong user name, password or key.";
  }
});
