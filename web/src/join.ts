/**
 * /join/CODE: a student names themself and joins the class. The server answers with a
 * new session cookie (the student's), and the student page takes over at /.
 */
import { ApiError, api } from './api';
import { describeError } from './containers';
import { h } from './dom';
import { pageShell } from './shell';

const NAME_MAX = 40;

export function startJoinPage(code: string): void {
  const shell = pageShell({ subtitle: 'join a class', pageClass: 'page-join', title: 'Join a class · mdocker' });

  const name = h('input', {
    id: 'join-name',
    type: 'text',
    name: 'name',
    autocomplete: 'nickname',
    required: true,
    maxlength: NAME_MAX,
    spellcheck: 'false',
    'aria-describedby': 'join-name-hint',
  });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Join the class');
  const form = h(
    'form',
    { class: 'join-form card-panel', 'aria-label': 'Join the class', novalidate: true },
    h('h2', { class: 'join-title' }, 'Join the class'),
    h('p', { class: 'muted' }, 'Class code ', h('code', { class: 'join-code' }, code)),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'join-name' }, 'Your name'),
      name,
      h(
        'span',
        { class: 'field-hint', id: 'join-name-hint' },
        `What your teacher sees next to your terminal (1 to ${NAME_MAX} characters).`,
      ),
    ),
    submit,
    error,
  );
  shell.main.append(h('div', { class: 'join-page' }, form));
  name.focus();

  const fail = (text: string): void => {
    error.textContent = text;
    error.hidden = false;
    name.setAttribute('aria-invalid', 'true');
    name.focus();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (value.length < 1 || [...value].length > NAME_MAX) {
      fail(`Enter a name of 1 to ${NAME_MAX} characters.`);
      return;
    }
    submit.disabled = true;
    error.hidden = true;
    name.removeAttribute('aria-invalid');
    api
      .join({ code, name: value }, new URLSearchParams(location.search).get('node'))
      .then(() => {
        // A fresh page: the session cookie changed, and the student page starts from /api/me.
        location.assign('/');
      })
      .catch((err: unknown) => {
        submit.disabled = false;
        if (err instanceof ApiError && err.status === 404) {
          fail(
            'This class code is not valid: it may be mistyped, replaced by a new one, or the class has ended. Ask your teacher for the current link.',
          );
        } else if (err instanceof ApiError && err.status === 429) {
          fail('Too many join attempts from this network. Wait a minute, then try again.');
        } else if (err instanceof ApiError && err.status === 409) {
          fail(`Cannot join: ${err.message}`);
        } else {
          fail(`Cannot join: ${describeError(err)}`);
        }
      });
  });
}
