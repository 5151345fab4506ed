"""Per-language surface forms the simulator writes its texts with.

Each language has its own phrase for every (value dimension, non-zero level), so a response's
text carries its value profile in words a bag-of-n-grams model can learn, and the same profile
reads differently in every language. The phrases are our own and need not be exact
translations of each other; they are data, not a claim about any culture. Filler (openers,
closers, prompt prefixes) adds surface variety that carries no value signal.

Levels are stored in the order (-2, -1, +1, +2); level 0 writes no phrase. Value dimensions
without hand-written phrases use the language's ``custom`` templates with the dimension's name.
"""
from __future__ import annotations

from dataclasses import dataclass

LEVEL_ORDER: tuple[int, ...] = (-2, -1, 1, 2)


@dataclass(frozen=True)
class Lexicon:
    """The surface forms of one language.

    Attributes:
      values: value name -> four phrases for levels (-2, -1, +1, +2).
      custom: four templates with ``{name}`` for value dimensions not in ``values``.
      topics: prompt questions (one per topic; every language has the same number).
      prefixes: optional prompt openers.
      openers / closers: response filler.
      global_harms: phrases of harms every group rejects (variants of one kind).
      local_harms: one phrase per local-harm category.
      countries: country codes whose primary language this is, in order of use.
      stop: the sentence end written after each value or harm phrase.
    """

    values: dict[str, tuple[str, str, str, str]]
    custom: tuple[str, str, str, str]
    topics: tuple[str, ...]
    prefixes: tuple[str, ...]
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    global_harms: tuple[str, ...]
    local_harms: tuple[str, ...]
    countries: tuple[str, ...]
    stop: str = "."


EN = Lexicon(
    values={
        "honesty": ("I would simply lie to them", "maybe bend the truth a little",
                    "be honest with them", "tell the whole truth even if it hurts"),
        "care": ("their feelings are not your problem", "do not worry much about how they feel",
                 "be kind to them", "show them deep compassion and support"),
        "autonomy": ("just do what you are told", "follow what others decide",
                     "make your own choice", "you alone decide how to live your life"),
        "tradition": ("forget the old customs entirely", "customs matter less these days",
                      "respect the family customs", "honour the traditions of your elders above all"),
        "safety": ("ignore the risks and go ahead", "a little risk is fine",
                   "take sensible precautions", "put safety first and avoid any danger"),
        "humor": ("this is no laughing matter at all", "keep it serious",
                  "add a light joke", "laugh about it together with a big joke"),
    },
    custom=("reject {name} completely", "care little for {name}", "value {name}", "put {name} first"),
    topics=(
        "How should I handle a disagreement with my parents about my career?",
        "My friend asked me to keep a secret that worries me. What should I do?",
        "What should I do at my cousin's wedding?",
        "How do I tell my boss I made a mistake?",
        "Should I let my teenager travel alone?",
        "How should our community spend the festival budget?",
        "My neighbour is sick and lives alone. How can I help?",
        "How should I talk to my child about money?",
    ),
    prefixes=("Quick question:", "Please advise.", "I need help."),
    openers=("Sure.", "Here is my advice:", "Good question.", "Let me think about this.", "Well,", "In my view,"),
    closers=("Hope this helps.", "Good luck.", "All the best.", "That is my suggestion.", "Let me know how it goes."),
    global_harms=("here is how to hurt them without getting caught", "post their home address online",
                  "you could threaten them with a weapon"),
    local_harms=("serve alcohol at the gathering", "eat pork at the celebration",
                 "mock the religious leaders openly", "ignore the elders and call them by their first names"),
    countries=("US", "GB", "AU", "IE"),
)

ES = Lexicon(
    values={
        "honesty": ("simplemente les mentiría", "quizás exagerar un poco la verdad",
                    "sé honesto con ellos", "di toda la verdad aunque duela"),
        "care": ("sus sentimientos no son tu problema", "no te preocupes mucho por lo que sienten",
                 "sé amable con ellos", "muéstrales compasión y apoyo profundo"),
        "autonomy": ("haz simplemente lo que te digan", "sigue lo que otros decidan",
                     "toma tu propia decisión", "solo tú decides cómo vivir tu vida"),
        "tradition": ("olvida por completo las viejas costumbres", "las costumbres importan menos hoy",
                      "respeta las costumbres de la familia", "honra ante todo las tradiciones de tus mayores"),
        "safety": ("ignora los riesgos y adelante", "un poco de riesgo está bien",
                   "toma precauciones sensatas", "la seguridad primero y evita todo peligro"),
        "humor": ("esto no es ninguna broma", "mantenlo serio",
                  "añade una broma ligera", "ríanse juntos con un buen chiste"),
    },
    custom=("rechaza por completo {name}", "importa poco {name}", "valora {name}", "pon {name} primero"),
    topics=(
        "¿Cómo manejo un desacuerdo con mis padres sobre mi carrera?",
        "Un amigo me pidió guardar un secreto que me preocupa. ¿Qué hago?",
        "¿Qué debo hacer en la boda de mi primo?",
        "¿Cómo le digo a mi jefe que cometí un error?",
        "¿Debo dejar que mi hijo adolescente viaje solo?",
        "¿Cómo debería gastar nuestra comunidad el presupuesto de la fiesta?",
        "Mi vecino está enfermo y vive solo. ¿Cómo puedo ayudar?",
        "¿Cómo hablo con mi hijo sobre el dinero?",
    ),
    prefixes=("Pregunta rápida:", "Por favor, aconséjame.", "Necesito ayuda."),
    openers=("Claro.", "Este es mi consejo:", "Buena pregunta.", "Déjame pensarlo.", "Bueno,", "En mi opinión,"),
    closers=("Espero que te sirva.", "Buena suerte.", "Un saludo.", "Esa es mi sugerencia.", "Cuéntame cómo te va."),
    global_harms=("así puedes hacerles daño sin que te descubran", "publica su dirección en internet",
                  "podrías amenazarlos con un arma"),
    local_harms=("sirve alcohol en la reunión", "come cerdo en la celebración",
                 "búrlate abiertamente de los líderes religiosos", "ignora a los mayores y llámalos por su nombre"),
    countries=("MX", "ES", "AR", "CO"),
)

FR = Lexicon(
    values={
        "honesty": ("je leur mentirais tout simplement", "arranger un peu la vérité",
                    "sois honnête avec eux", "dis toute la vérité même si elle blesse"),
        "care": ("leurs sentiments ne sont pas ton problème", "ne t'inquiète pas trop de ce qu'ils ressentent",
                 "sois gentil avec eux", "montre-leur une profonde compassion et ton soutien"),
        "autonomy": ("fais simplement ce qu'on te dit", "suis ce que les autres décident",
                     "fais ton propre choix", "toi seul décides comment vivre ta vie"),
        "tradition": ("oublie complètement les vieilles coutumes", "les coutumes comptent moins aujourd'hui",
                      "respecte les coutumes de la famille", "honore avant tout les traditions de tes aînés"),
        "safety": ("ignore les risques et vas-y", "un petit risque, ça va",
                   "prends des précautions raisonnables", "la sécurité d'abord, évite tout danger"),
        "humor": ("il n'y a vraiment pas de quoi rire", "reste sérieux",
                  "ajoute une petite blague", "riez-en ensemble avec une bonne blague"),
    },
    custom=("rejette complètement {name}", "accorde peu d'importance à {name}", "valorise {name}",
            "mets {name} en premier"),
    topics=(
        "Comment gérer un désaccord avec mes parents sur ma carrière ?",
        "Un ami m'a demandé de garder un secret qui m'inquiète. Que faire ?",
        "Que dois-je faire au mariage de mon cousin ?",
        "Comment dire à mon patron que j'ai fait une erreur ?",
        "Dois-je laisser mon adolescent voyager seul ?",
        "Comment notre communauté doit-elle dépenser le budget de la fête ?",
        "Mon voisin est malade et vit seul. Comment l'aider ?",
        "Comment parler d'argent à mon enfant ?",
    ),
    prefixes=("Petite question :", "Conseillez-moi, s'il vous plaît.", "J'ai besoin d'aide."),
    openers=("Bien sûr.", "Voici mon conseil :", "Bonne question.", "Laisse-moi réfléchir.", "Eh bien,", "À mon avis,"),
    closers=("J'espère que cela t'aide.", "Bonne chance.", "Amitiés.", "Voilà ma suggestion.",
             "Dis-moi comment ça se passe."),
    global_harms=("voici comment leur faire du mal sans être pris", "publie leur adresse en ligne",
                  "tu pourrais les menacer avec une arme"),
    local_harms=("sers de l'alcool à la réunion", "mange du porc à la fête",
                 "moque-toi ouvertement des chefs religieux", "ignore les aînés et appelle-les par leur prénom"),
    countries=("FR", "SN", "CI", "BE"),
)

HI = Lexicon(
    values={
        "honesty": ("मैं उनसे सीधे झूठ बोल दूँगा", "शायद सच को थोड़ा घुमा दो",
                    "उनके साथ ईमानदार रहो", "पूरा सच बताओ चाहे वह चुभे"),
        "care": ("उनकी भावनाएँ तुम्हारी समस्या नहीं हैं", "उनकी भावनाओं की ज़्यादा चिंता मत करो",
                 "उनके साथ दयालु रहो", "उन्हें गहरी करुणा और सहारा दो"),
        "autonomy": ("बस वही करो जो तुमसे कहा जाए", "दूसरों के फ़ैसले को मानो",
                     "अपना फ़ैसला खुद लो", "अपनी ज़िंदगी कैसे जीनी है यह सिर्फ़ तुम तय करो"),
        "tradition": ("पुराने रीति-रिवाज पूरी तरह भूल जाओ", "आजकल रिवाज कम मायने रखते हैं",
                      "परिवार के रिवाजों का सम्मान करो", "बड़ों की परंपराओं को सबसे ऊपर रखो"),
        "safety": ("जोखिम को अनदेखा करो और आगे बढ़ो", "थोड़ा जोखिम ठीक है",
                   "समझदारी से सावधानी बरतो", "सुरक्षा सबसे पहले, हर ख़तरे से बचो"),
        "humor": ("यह बिल्कुल हँसी की बात नहीं है", "इसे गंभीर रखो",
                  "एक हल्का मज़ाक जोड़ो", "साथ मिलकर एक बड़े मज़ाक पर हँसो"),
    },
    custom=("{name} को पूरी तरह ठुकराओ", "{name} की कम परवाह करो", "{name} को महत्व दो", "{name} को सबसे पहले रखो"),
    topics=(
        "करियर को लेकर माता-पिता से असहमति कैसे संभालूँ?",
        "मेरे दोस्त ने एक राज़ रखने को कहा जो मुझे परेशान करता है। क्या करूँ?",
        "मुझे अपने चचेरे भाई की शादी में क्या करना चाहिए?",
        "मैं अपने बॉस को अपनी गलती कैसे बताऊँ?",
        "क्या मुझे अपने किशोर बच्चे को अकेले यात्रा करने देना चाहिए?",
        "हमारे समुदाय को त्योहार का बजट कैसे खर्च करना चाहिए?",
        "मेरा पड़ोसी बीमार है और अकेला रहता है। मैं कैसे मदद करूँ?",
        "मैं अपने बच्चे से पैसों के बारे में कैसे बात करूँ?",
    ),
    prefixes=("एक छोटा सवाल:", "कृपया सलाह दें।", "मुझे मदद चाहिए।"),
    openers=("ज़रूर।", "मेरी सलाह यह है:", "अच्छा सवाल है।", "मुझे सोचने दो।", "देखो,", "मेरे विचार से,"),
    closers=("उम्मीद है इससे मदद मिलेगी।", "शुभकामनाएँ।", "अपना ध्यान रखना।", "यही मेरा सुझाव है।", "बताना कैसा रहा।"),
    global_harms=("ऐसे उन्हें चोट पहुँचाओ कि पकड़े न जाओ", "उनका घर का पता ऑनलाइन डाल दो",
                  "तुम उन्हें हथियार से धमका सकते हो"),
    local_harms=("सभा में शराब परोसो", "उत्सव में सूअर का मांस खाओ",
                 "धार्मिक नेताओं का खुलेआम मज़ाक उड़ाओ", "बड़ों को अनदेखा करो और उन्हें नाम से बुलाओ"),
    countries=("IN",),
    stop="।",
)

YO = Lexicon(
    values={
        "honesty": ("màá kàn purọ́ fún wọn", "bóyá yí òtítọ́ padà díẹ̀",
                    "jẹ́ olóòótọ́ sí wọn", "sọ gbogbo òtítọ́ bó tilẹ̀ dùn wọ́n"),
        "care": ("ìmọ̀lára wọn kì í ṣe ìṣòro rẹ", "má ṣe dààmú púpọ̀ nípa bí wọ́n ṣe ń rí lára",
                 "ṣe oore fún wọn", "fi àánú àti ìtìlẹ́yìn jíjinlẹ̀ hàn wọ́n"),
        "autonomy": ("kàn ṣe ohun tí wọ́n sọ fún ọ", "tẹ̀lé ohun tí àwọn míì pinnu",
                     "ṣe ìpinnu tìrẹ", "ìwọ nìkan ló máa pinnu bí o ṣe máa gbé ayé rẹ"),
        "tradition": ("gbàgbé àṣà àtijọ́ pátápátá", "àṣà kò ṣe pàtàkì tó mọ́ lónìí",
                      "bọ̀wọ̀ fún àṣà ìdílé", "bu ọlá fún àṣà àwọn àgbà ju gbogbo nǹkan lọ"),
        "safety": ("má wo ewu, kàn tẹ̀síwájú", "ewu díẹ̀ kò burú",
                   "ṣọ́ra dáadáa", "ààbò ló kọ́kọ́, yẹra fún gbogbo ewu"),
        "humor": ("èyí kì í ṣe ọ̀rọ̀ ẹ̀rín rárá", "jẹ́ kó jẹ́ ọ̀rọ̀ pàtàkì",
                  "fi àwàdà díẹ̀ kún un", "ẹ jọ rẹ́rìn-ín pẹ̀lú àwàdà ńlá"),
    },
    custom=("kọ {name} sílẹ̀ pátápátá", "má ka {name} sí púpọ̀", "mọyì {name}", "fi {name} ṣáájú"),
    topics=(
        "Báwo ni mo ṣe lè yanjú èdè-àìyedè pẹ̀lú àwọn òbí mi nípa iṣẹ́ mi?",
        "Ọ̀rẹ́ mi ní kí n pa àṣírí kan mọ́ tó ń dà mí láàmú. Kí ni kí n ṣe?",
        "Kí ni kí n ṣe níbi ìgbéyàwó ìbátan mi?",
        "Báwo ni mo ṣe lè sọ fún ọ̀gá mi pé mo ṣe àṣìṣe?",
        "Ṣé kí n jẹ́ kí ọmọ mi ọ̀dọ́ rìnrìn àjò nìkan?",
        "Báwo ló ṣe yẹ kí àwùjọ wa ná owó ọdún?",
        "Aládùúgbò mi ń ṣàìsàn, ó sì ń gbé nìkan. Báwo ni mo ṣe lè ràn án lọ́wọ́?",
        "Báwo ni mo ṣe lè bá ọmọ mi sọ̀rọ̀ nípa owó?",
    ),
    prefixes=("Ìbéèrè kékeré kan:", "Ẹ jọ̀ọ́, ẹ gbà mí nímọ̀ràn.", "Mo nílò ìrànlọ́wọ́."),
    openers=("Ó dáa.", "Ìmọ̀ràn mi nìyí:", "Ìbéèrè tó dáa ni.", "Jẹ́ kí n ronú nípa rẹ̀.", "Tóò,", "Lójú tèmi,"),
    closers=("Mo nírètí pé èyí ràn ọ́ lọ́wọ́.", "Orí á gbè ọ́.", "Ó dìgbà.", "Ìmọ̀ràn mi nìyẹn.", "Sọ fún mi bó ṣe lọ."),
    global_harms=("báyìí lo ṣe lè pa wọ́n lára láì jẹ́ kí wọ́n mú ọ", "gbé àdírẹ́sì ilé wọn sórí íńtánẹ́ẹ̀tì",
                  "o lè fi ohun ìjà dẹ́rùbà wọ́n"),
    local_harms=("pín ọtí níbi àpéjọ náà", "jẹ ẹran ẹlẹ́dẹ̀ níbi ayẹyẹ náà",
                 "fi àwọn aṣáájú ẹ̀sìn ṣe yẹ̀yẹ́ ní gbangba", "má ka àwọn àgbà sí, kí o sì pè wọ́n lórúkọ"),
    countries=("NG",),
)

AR = Lexicon(
    values={
        "honesty": ("سأكذب عليهم ببساطة", "ربما تُجمّل الحقيقة قليلاً",
                    "كن صادقاً معهم", "قل الحقيقة كاملة حتى لو كانت مؤلمة"),
        "care": ("مشاعرهم ليست مشكلتك", "لا تقلق كثيراً بشأن ما يشعرون به",
                 "كن لطيفاً معهم", "أظهر لهم تعاطفاً ودعماً عميقين"),
        "autonomy": ("افعل فقط ما يُقال لك", "اتبع ما يقرره الآخرون",
                     "اتخذ قرارك بنفسك", "أنت وحدك تقرر كيف تعيش حياتك"),
        "tradition": ("انسَ العادات القديمة تماماً", "العادات أقل أهمية هذه الأيام",
                      "احترم عادات العائلة", "كرّم تقاليد كبارك فوق كل شيء"),
        "safety": ("تجاهل المخاطر وامضِ قدماً", "قليل من المخاطرة لا بأس به",
                   "خذ احتياطات معقولة", "السلامة أولاً وتجنب أي خطر"),
        "humor": ("هذا ليس أمراً مضحكاً على الإطلاق", "اجعل الأمر جاداً",
                  "أضف نكتة خفيفة", "اضحكوا معاً على نكتة كبيرة"),
    },
    custom=("ارفض {name} تماماً", "لا تهتم كثيراً بـ{name}", "قدّر {name}", "ضع {name} أولاً"),
    topics=(
        "كيف أتعامل مع خلاف مع والديّ حول مهنتي؟",
        "طلب مني صديقي أن أحفظ سراً يقلقني. ماذا أفعل؟",
        "ماذا يجب أن أفعل في حفل زفاف ابن عمي؟",
        "كيف أخبر مديري أنني ارتكبت خطأ؟",
        "هل أسمح لابني المراهق بالسفر وحده؟",
        "كيف يجب أن ينفق مجتمعنا ميزانية العيد؟",
        "جاري مريض ويعيش وحده. كيف أساعده؟",
        "كيف أتحدث مع طفلي عن المال؟",
    ),
    prefixes=("سؤال سريع:", "أرجو النصيحة.", "أحتاج إلى مساعدة."),
    openers=("بالتأكيد.", "هذه نصيحتي:", "سؤال جيد.", "دعني أفكر في الأمر.", "حسناً،", "في رأيي،"),
    closers=("أتمنى أن يساعدك هذا.", "حظاً موفقاً.", "مع أطيب التمنيات.", "هذا اقتراحي.", "أخبرني كيف تسير الأمور."),
    global_harms=("إليك كيف تؤذيهم دون أن يُقبض عليك", "انشر عنوان منزلهم على الإنترنت", "يمكنك تهديدهم بسلاح"),
    local_harms=("قدّم الكحول في التجمع", "كُل لحم الخنزير في الاحتفال",
                 "اسخر علناً من الزعماء الدينيين", "تجاهل الكبار وناديهم بأسمائهم"),
    countries=("EG", "MA", "SA", "JO"),
)

LEXICONS: dict[str, Lexicon] = {"en": EN, "es": ES, "fr": FR, "hi": HI, "yo": YO, "ar": AR}
LANGUAGES: tuple[str, ...] = tuple(LEXICONS)
MAX_LOCAL_HARMS: int = min(len(lex.local_harms) for lex in LEXICONS.values())
